// Package wkd looks up OpenPGP keys in a Web Key Directory
// (draft-koch-openpgp-webkey-service): the key of local@domain is served
// over HTTPS at
//
//	advanced: https://openpgpkey.DOMAIN/.well-known/openpgpkey/DOMAIN/hu/HASH?l=LOCAL
//	direct:   https://DOMAIN/.well-known/openpgpkey/hu/HASH?l=LOCAL
//
// where HASH is the z-base-32 encoding (RFC 6189 §5.1.6) of the SHA-1 of
// the lowercased local part. The advanced method is tried first; the
// direct method when the advanced host does not exist. The answer is a
// binary (or, leniently, armored) transferable public key, which must
// carry a user ID with the address.
package wkd

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
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
	if !ok || local == "" || domain == "" || strings.ContainsAny(domain, "/?#@ ") {
		return "", "", fmt.Errorf("wkd: %q is not an address", address)
	}
	domain = strings.ToLower(domain)
	h, l := Hash(local), url.QueryEscape(local)
	advanced = fmt.Sprintf("https://openpgpkey.%s/.well-known/openpgpkey/%s/hu/%s?l=%s", domain, domain, h, l)
	direct = fmt.Sprintf("https://%s/.well-known/openpgpkey/hu/%s?l=%s", domain, h, l)
	return advanced, direct, nil
}

// ErrNotFound is returned when neither method has a key.
var ErrNotFound = errors.New("wkd: no key")

// Lookup fetches address's key (the raw bytes served) with hc.
func Lookup(ctx context.Context, hc *http.Client, address string) ([]byte, error) {
	adv, dir, err := URLs(address)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, u := range []string{adv, dir} {
		b, err := get(ctx, hc, u)
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

func get(ctx context.Context, hc *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("wkd: building the request: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("wkd: fetching the key: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, ErrNotFound
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("wkd: %s: HTTP %d", u, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20+1))
	if err != nil {
		return nil, fmt.Errorf("wkd: reading the key: %w", err)
	}
	if len(b) > 1<<20 || len(b) == 0 {
		return nil, fmt.Errorf("wkd: %s: key of %d bytes", u, len(b))
	}
	return b, nil
}
