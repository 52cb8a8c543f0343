// Package wkd looks up OpenPGP keys in a Web Key Directory
// (draft-koch-openpgp-webkey-service): the key of local@domain is served
// over HTTPS at
//
//	advanced: https://openpgpkey.DOMAIN/.well-known/openpgpkey/DOMAIN/hu/HASH?l=LOCAL
//	direct:   https://DOMAIN/.well-known/openpgpkey/hu/HASH?l=LOCAL
//
// where HASH is the z-base-32 encoding (RFC 6189 §5.1.6) of the SHA-1 of
// the lowercased local part. The advanced method is tried first, then the
// direct one. The answer is a binary (or, leniently, armored)
// transferable public key; Select picks the one key for the address out
// of it and keeps only the user IDs with the address.
//
// What a fetch accepts (Get): an answer of at most MaxKeyBytes, over TLS
// whose chain the client verified, after at most three redirects that
// stay on the same https host. Anything else is an error, never a key.
package wkd

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

const zbase32 = "ybndrfg8ejkmcpqxot1uwisza345h769"

// ZBase32 encodes b in z-base-32.
func ZBase32(b []byte) string {
	var sb strings.Builder
	var buf uint64
	bits := 0
	for _, c := range b {
		buf = buf<<8 | uint64(c)
		bits += 8
		for bits >= 5 {
			bits -= 5
			sb.WriteByte(zbase32[(buf>>uint(bits))&31])
		}
	}
	if bits > 0 {
		sb.WriteByte(zbase32[(buf<<uint(5-bits))&31])
	}
	return sb.String()
}

// Hash is the WKD hash of a local part.
func Hash(local string) string {
	sum := sha1.Sum([]byte(strings.ToLower(local)))
	return ZBase32(sum[:])
}

// URLs are the advanced and direct lookup URLs of address.
func URLs(address string) (advanced, direct string, err error) {
	local, domain, ok := strings.Cut(address, "@")
	if !ok || local == "" || domain == "" || strings.ContainsAny(domain, "/?#@:[] \\") || strings.Contains(local, "@") {
		return "", "", fmt.Errorf("wkd: %q is not an address", address)
	}
	domain = strings.ToLower(domain)
	h, l := Hash(local), url.QueryEscape(local)
	advanced = fmt.Sprintf("https://openpgpkey.%s/.well-known/openpgpkey/%s/hu/%s?l=%s", domain, domain, h, l)
	direct = fmt.Sprintf("https://%s/.well-known/openpgpkey/hu/%s?l=%s", domain, h, l)
	return advanced, direct, nil
}

// MaxKeyBytes bounds an answer; a larger one is refused (ErrTooLarge).
const MaxKeyBytes = 256 << 10

// Errors of a fetch.
var (
	// ErrNotFound: the directory answered that it has no key (404 or
	// 410), or neither method had one.
	ErrNotFound = errors.New("wkd: no key")
	// ErrTooLarge: the answer is over MaxKeyBytes.
	ErrTooLarge = fmt.Errorf("wkd: answer over %d bytes", MaxKeyBytes)
	// ErrUnverified: the answer did not come over TLS the client verified.
	ErrUnverified = errors.New("wkd: answer not over verified TLS")
	// ErrRedirect: a redirect left the https host asked, or there were
	// more than three.
	ErrRedirect = errors.New("wkd: redirect refused")
)

// Lookup fetches address's key (the raw bytes served) with hc: the
// advanced method, then the direct one.
func Lookup(ctx context.Context, hc *http.Client, address string) ([]byte, error) {
	adv, dir, err := URLs(address)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, u := range []string{adv, dir} {
		b, err := Get(ctx, hc, u)
		if err == nil {
			return b, nil
		}
		errs = append(errs, err)
	}
	if errors.Is(errs[0], ErrNotFound) && errors.Is(errs[1], ErrNotFound) {
		return nil, ErrNotFound
	}
	return nil, errors.Join(errs...)
}

// Get fetches one WKD URL with hc (whose transport verifies TLS: the
// system's roots, or what a test gives it), under the rules of the
// package comment.
func Get(ctx context.Context, hc *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("wkd: building the request: %w", err)
	}
	c := *hc
	c.CheckRedirect = SameHostRedirects
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("wkd: fetching the key: %w", err)
	}
	defer resp.Body.Close()
	if resp.TLS == nil || len(resp.TLS.VerifiedChains) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrUnverified, req.URL.Host)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusGone:
		return nil, ErrNotFound
	default:
		return nil, fmt.Errorf("wkd: %s: HTTP %d", req.URL.Host, resp.StatusCode)
	}
	b, err := ReadCapped(resp.Body, MaxKeyBytes)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("wkd: %s: empty answer", req.URL.Host)
	}
	return b, nil
}

// ReadCapped reads r to its end, refusing more than limit bytes
// (ErrTooLarge when limit is MaxKeyBytes).
func ReadCapped(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("wkd: reading the answer: %w", err)
	}
	if int64(len(b)) > limit {
		if limit == MaxKeyBytes {
			return nil, ErrTooLarge
		}
		return nil, fmt.Errorf("wkd: answer over %d bytes", limit)
	}
	return b, nil
}

// SameHostRedirects is a CheckRedirect that follows at most three
// redirects, each to https on the host first asked: a key that comes from
// another host is not the domain's own.
func SameHostRedirects(req *http.Request, via []*http.Request) error {
	if len(via) >= 3 {
		return fmt.Errorf("%w: more than three", ErrRedirect)
	}
	if req.URL.Scheme != "https" || !strings.EqualFold(req.URL.Host, via[0].URL.Host) {
		return fmt.Errorf("%w: from %s to another host", ErrRedirect, via[0].URL.Host)
	}
	return nil
}

// Errors of Select.
var (
	ErrNoUsableKey = errors.New("wkd: no usable key for the address in the answer")
	ErrAmbiguous   = errors.New("wkd: several usable keys for the address in the answer")
)

// Select reads an answer (binary, or armored, keys; several may be
// concatenated) and returns the one key usable for address at now: with
// a user ID of the address (compared case-insensitively, its
// self-signature valid), not revoked, with a valid encryption key. Keys
// for other addresses, revoked and expired ones are skipped, as the
// draft lets a directory serve a revoked key beside its successor; two
// usable keys are refused as ambiguous (ErrAmbiguous) rather than
// guessed between. The key returned has only the address's user IDs.
func Select(raw []byte, address string, now time.Time) (*openpgp.Entity, error) {
	address = strings.ToLower(strings.TrimSpace(address))
	var el openpgp.EntityList
	var err error
	if bytes.Contains(raw[:min(len(raw), 64)], []byte("-----BEGIN PGP")) {
		el, err = openpgp.ReadArmoredKeyRing(bytes.NewReader(raw))
	} else {
		el, err = openpgp.ReadKeyRing(bytes.NewReader(raw))
	}
	if err != nil {
		return nil, fmt.Errorf("wkd: the answer is not an OpenPGP key: %w", err)
	}
	var found *openpgp.Entity
	for _, e := range el {
		if e.PrivateKey != nil {
			continue // a directory serves public keys only
		}
		ids := map[string]*openpgp.Identity{}
		for name, id := range e.Identities {
			if id.UserId != nil && strings.ToLower(id.UserId.Email) == address && !id.Revoked(now) &&
				(id.SelfSignature == nil || !id.SelfSignature.SigExpired(now)) {
				ids[name] = id
			}
		}
		if len(ids) == 0 || e.Revoked(now) {
			continue
		}
		c := *e
		c.Identities = ids
		if _, ok := c.EncryptionKey(now); !ok {
			continue
		}
		if found != nil {
			return nil, ErrAmbiguous
		}
		found = &c
	}
	if found == nil {
		return nil, ErrNoUsableKey
	}
	return found, nil
}
