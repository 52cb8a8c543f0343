// Package autocrypt reads and writes Autocrypt Level 1 headers.
//
// # Autocrypt
//
// Autocrypt (https://autocrypt.org/level1.html, Level 1) distributes
// OpenPGP public keys inside ordinary mail, without key servers: every
// message a participating client sends carries its sender's public key in
// an "Autocrypt" header field, and receivers remember the newest key seen
// per sender address, so that replies can be encrypted.
//
// The header (Level 1 §2.1 "The Autocrypt Header") is a list of
// attributes separated by semicolons:
//
//	Autocrypt: addr=alice@example.org; prefer-encrypt=mutual; keydata=
//	  xjMEZ...base64...
//
// The attributes are:
//
//   - addr (mandatory): the single address the key is for. It must be
//     the address of the From field; otherwise the whole header is
//     invalid.
//   - prefer-encrypt (optional): only the value "mutual" is defined (the
//     sender wants encryption by default when the peer wants it too);
//     any other value means "nopreference".
//   - keydata (mandatory, last): the base64 of a binary OpenPGP
//     Transferable Public Key (RFC 4880 §11.1). Whitespace (folding) in
//     it is ignored.
//   - Further attributes may appear. Names starting with "_" are
//     non-critical and are ignored when unknown; an unknown critical
//     attribute (no "_") makes the whole header invalid, which lets
//     future versions hide incompatible headers from Level 1 clients.
//
// The key should be minimal (§2.1.1 "OpenPGP Based key data"): a signing
// primary key, one user ID with its self-signature, one encryption subkey
// with its binding signature - five packets. A header above 10 KiB should
// be treated as invalid.
//
// When reading a message (§2.3 "Updating Autocrypt Peer State"), all
// Autocrypt fields are examined; if more than one is valid, that is an
// error and all are discarded. Messages marked Auto-Submitted:
// auto-replied, multipart/report messages and messages with more than one
// From address are ignored.
//
// This package implements the header format, the key-data rules and the
// header selection; the peer state machine and encryption recommendation
// (§2.2-§2.4) belong to the caller.
package autocrypt

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// Header is a parsed Autocrypt header.
type Header struct {
	Addr          string
	PreferEncrypt string // "mutual" or "" (nopreference)
	KeyData       []byte // binary OpenPGP transferable public key
}

// MaxHeaderSize is the size above which a header is invalid (Level 1 §2.1:
// "MUAs SHOULD treat such headers as invalid").
const MaxHeaderSize = 10 << 10

// Errors.
var (
	ErrInvalid         = errors.New("autocrypt: invalid header")
	ErrCritical        = errors.New("autocrypt: unknown critical attribute")
	ErrMultipleHeaders = errors.New("autocrypt: more than one valid Autocrypt header")
)

// Parse parses an Autocrypt header value (without the "Autocrypt:" name)
// per Level 1 §2.1. Folding whitespace is allowed anywhere; attribute
// names are matched case-insensitively; keydata may appear anywhere in
// the list (senders must put it last, but that is not needed to parse).
func Parse(value string) (*Header, error) {
	if len(value) > MaxHeaderSize {
		return nil, fmt.Errorf("%w: larger than 10 KiB", ErrInvalid)
	}
	h := &Header{}
	seen := map[string]bool{}
	var keydata string
	for _, attr := range strings.Split(value, ";") {
		attr = strings.TrimSpace(attr)
		if attr == "" {
			continue
		}
		name, val, ok := strings.Cut(attr, "=")
		if !ok {
			return nil, fmt.Errorf("%w: attribute %q without value", ErrInvalid, clip(attr))
		}
		name = strings.ToLower(strings.TrimSpace(name))
		val = strings.TrimSpace(val)
		if name == "" {
			return nil, fmt.Errorf("%w: empty attribute name", ErrInvalid)
		}
		if seen[name] {
			return nil, fmt.Errorf("%w: duplicate attribute %q", ErrInvalid, name)
		}
		seen[name] = true
		switch name {
		case "addr":
			h.Addr = strings.Trim(val, "<> \t")
		case "prefer-encrypt":
			// Any value other than "mutual" means nopreference.
			if strings.EqualFold(val, "mutual") {
				h.PreferEncrypt = "mutual"
			}
		case "keydata":
			keydata = val
		default:
			if !strings.HasPrefix(name, "_") {
				return nil, fmt.Errorf("%w: %q", ErrCritical, clip(name))
			}
		}
	}
	if h.Addr == "" || !strings.Contains(h.Addr, "@") || strings.ContainsAny(h.Addr, " \t\r\n,<>") {
		return nil, fmt.Errorf("%w: missing or bad addr", ErrInvalid)
	}
	clean := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, keydata)
	if clean == "" {
		return nil, fmt.Errorf("%w: missing keydata", ErrInvalid)
	}
	kd, err := base64.StdEncoding.DecodeString(clean)
	if err != nil {
		if kd, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(clean, "=")); err != nil {
			return nil, fmt.Errorf("%w: keydata is not base64", ErrInvalid)
		}
	}
	if len(kd) == 0 {
		return nil, fmt.Errorf("%w: empty keydata", ErrInvalid)
	}
	h.KeyData = kd
	return h, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// String formats the header value: "addr=...; [prefer-encrypt=mutual; ]
// keydata=" followed by the base64 key data folded into lines of 76
// characters, each continuation line starting with CRLF and a space
// (RFC 5322 §2.2.3 folding), keydata last as §2.1 requires.
func (h *Header) String() string {
	var b strings.Builder
	b.WriteString("addr=" + h.Addr + "; ")
	if h.PreferEncrypt == "mutual" {
		b.WriteString("prefer-encrypt=mutual; ")
	}
	b.WriteString("keydata=")
	enc := base64.StdEncoding.EncodeToString(h.KeyData)
	for len(enc) > 0 {
		n := min(76, len(enc))
		b.WriteString("\r\n " + enc[:n])
		enc = enc[n:]
	}
	return b.String()
}

// FromMessage returns the Autocrypt header of a message (Level 1 §2.3):
// the single valid Autocrypt field whose addr matches the From address
// (case-insensitively). It returns nil, nil when there is none, and when
// the message is to be ignored (Auto-Submitted: auto-replied,
// multipart/report, or not exactly one From address); it returns
// ErrMultipleHeaders when several fields are valid, in which case all of
// them must be discarded. Only the top-level header is read: Autocrypt
// belongs to the outer header of a message.
func FromMessage(msg []byte) (*Header, error) {
	hdr, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(msg)))
	if err != nil {
		return nil, fmt.Errorf("autocrypt: read header: %w", err)
	}
	mh := mail.Header{}
	mh.Header.Header = hdr
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(hdr.Get("Auto-Submitted"))), "auto-replied") {
		return nil, nil
	}
	if mt, _, err := mh.ContentType(); err == nil && mt == "multipart/report" {
		return nil, nil
	}
	from, err := mh.AddressList("From")
	if err != nil || len(from) != 1 {
		return nil, nil
	}
	var found *Header
	for _, v := range hdr.Values("Autocrypt") {
		h, err := Parse(v)
		if err != nil || !strings.EqualFold(h.Addr, from[0].Address) {
			continue
		}
		if found != nil {
			return nil, ErrMultipleHeaders
		}
		found = h
	}
	return found, nil
}

// Entity parses the key data. It must hold exactly one public key (a
// secret key is refused).
func (h *Header) Entity() (*openpgp.Entity, error) {
	el, err := openpgp.ReadKeyRing(bytes.NewReader(h.KeyData))
	if err != nil {
		return nil, fmt.Errorf("autocrypt: keydata: %w", err)
	}
	if len(el) != 1 {
		return nil, fmt.Errorf("autocrypt: keydata holds %d keys, want 1", len(el))
	}
	if el[0].PrivateKey != nil {
		return nil, errors.New("autocrypt: keydata holds a secret key")
	}
	return el[0], nil
}

// New makes the Autocrypt header for addr with the minimal key the
// specification recommends (Level 1 §2.1.1): the primary key, the user
// ID for addr with its self-signature, and the current encryption subkey
// with its binding signature - no other user IDs, subkeys or
// third-party signatures. Only public key material is written.
func New(addr string, e *openpgp.Entity, preferMutual bool) (*Header, error) {
	if e == nil || e.PrimaryKey == nil {
		return nil, errors.New("autocrypt: no key")
	}
	var ident *openpgp.Identity
	for _, id := range e.Identities {
		if id.UserId != nil && id.SelfSignature != nil && strings.EqualFold(strings.TrimSpace(id.UserId.Email), addr) {
			ident = id
			break
		}
	}
	if ident == nil {
		return nil, fmt.Errorf("autocrypt: key has no user ID for %s", addr)
	}
	enc, ok := e.EncryptionKey(time.Now())
	if !ok {
		return nil, errors.New("autocrypt: key has no valid encryption key")
	}
	minimal := &openpgp.Entity{
		PrimaryKey: e.PrimaryKey,
		Identities: map[string]*openpgp.Identity{ident.Name: {
			Name:          ident.Name,
			UserId:        ident.UserId,
			SelfSignature: ident.SelfSignature,
			Signatures:    []*packet.Signature{ident.SelfSignature},
		}},
	}
	if e.PrimaryKey.Version == 6 && e.SelfSignature != nil {
		// v6 keys carry their properties in a direct-key signature.
		minimal.SelfSignature = e.SelfSignature
		minimal.Signatures = []*packet.Signature{e.SelfSignature}
	}
	if enc.PublicKey != e.PrimaryKey {
		minimal.Subkeys = []openpgp.Subkey{{PublicKey: enc.PublicKey, Sig: enc.SelfSignature}}
	}
	var b bytes.Buffer
	if err := minimal.Serialize(&b); err != nil {
		return nil, fmt.Errorf("autocrypt: serialize key: %w", err)
	}
	h := &Header{Addr: addr, KeyData: b.Bytes()}
	if preferMutual {
		h.PreferEncrypt = "mutual"
	}
	return h, nil
}
