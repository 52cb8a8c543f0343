package incoming_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/bitmask-go/bitmask/internal/contactkeys"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/autocrypt"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
	"github.com/bitmask-go/bitmask/pkg/pgpmime"
)

// TestWhatVouchedIsTheLevel: keys a message offers are learned after its
// signature was judged, at the level of what vouched for them: a DKIM
// pass aligned with the From domain in the provider MX's
// Authentication-Results, by a signature that covers the Autocrypt
// header, gives weak_chain (and the next message signed by that key is
// valid), the same message without it gives unvouched
// (the next one is untrusted), and an Authentication-Results field that
// is not the MX's (not first, or another authserv-id) vouches for
// nothing.
func TestWhatVouchedIsTheLevel(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	r := testenv.StartDaemon(t, testenv.DaemonOptions{})
	a := testenv.NewUser(t, r.Daemon, p, "vouch@"+testenv.Domain)
	ownKey, err := a.CurrentKey()
	if err != nil {
		t.Fatal(err)
	}
	own := openpgp.EntityList{ownKey}
	// The message's own DKIM-Signature field (the MX checked it; here
	// only its tags matter): it covers the Autocrypt header, or not.
	dkimSig := func(d, h string) string {
		return "DKIM-Signature: v=1; a=rsa-sha256; d=" + d + "; s=s; h=" + h + "; bh=x; b=y\r\n"
	}
	cases := []struct {
		from, ar string
		level    contactkeys.Level
		vouch    string
		next     string // the status of the next signed message
	}{
		{"ceo@dkim.test", "Authentication-Results: " + testenv.Domain + ";\r\n\tdkim=pass header.d=dkim.test\r\n" + dkimSig("dkim.test", "from:subject:autocrypt"), contactkeys.WeakChain, "dkim:dkim.test", "valid"},
		{"ceo@mxname.test", "Authentication-Results: mx." + testenv.Domain + "; dkim=pass header.d=mxname.test\r\n" + dkimSig("mxname.test", "from:autocrypt"), contactkeys.WeakChain, "dkim:mxname.test", "valid"},
		// A DKIM-signed message replayed with an Autocrypt header added.
		{"ceo@replayed.test", "Authentication-Results: " + testenv.Domain + "; dkim=pass header.d=replayed.test\r\n" + dkimSig("replayed.test", "from:subject"), contactkeys.Unvouched, "none", "untrusted"},
		// DMARC can pass by SPF alone, which covers no header field.
		{"ceo@dmarc.test", "Authentication-Results: " + testenv.Domain + "; dkim=none; dmarc=pass header.from=dmarc.test\r\n", contactkeys.Unvouched, "none", "untrusted"},
		{"ceo@nothing.test", "Authentication-Results: " + testenv.Domain + "; dkim=none\r\n", contactkeys.Unvouched, "none", "untrusted"},
		{"ceo@forged.test", "Received: from x\r\nAuthentication-Results: " + testenv.Domain + "; dkim=pass header.d=forged.test\r\n", contactkeys.Unvouched, "none", "untrusted"},
		{"ceo@otherid.test", "Authentication-Results: mx.evil.test; dkim=pass header.d=otherid.test\r\n", contactkeys.Unvouched, "none", "untrusted"},
	}
	for _, c := range cases {
		t.Run(c.from, func(t *testing.T) {
			k, err := pgpkey.Generate(c.from, 0, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			h, err := autocrypt.New(c.from, k, false)
			if err != nil {
				t.Fatal(err)
			}
			msg := func(subject string) []byte {
				plain := []byte("From: " + c.from + "\r\nSubject: " + subject + "\r\nAutocrypt: " + h.String() + "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nhello\r\n")
				signed, err := pgpmime.Sign(plain, k, nil)
				if err != nil {
					t.Fatal(err)
				}
				return mxItem(t, ownKey, append([]byte(c.ar), signed...))
			}
			first := a.Incoming.Process(t.Context(), msg("first"), own, time.Now())
			if got := sigOf(first); !strings.HasPrefix(got, "could not verify") {
				t.Fatalf("first message: %q (a key must not vouch for the message that brings it)", got)
			}
			kept, err := a.Contacts.Get(c.from)
			if err != nil {
				t.Fatal(err)
			}
			if kept.Level != c.level || kept.Vouch != c.vouch {
				t.Fatalf("learned at %s vouch %q, want %s %q", kept.Level, kept.Vouch, c.level, c.vouch)
			}
			second := a.Incoming.Process(t.Context(), msg("second"), own, time.Now())
			if got := sigOf(second); !strings.HasPrefix(got, c.next+";") {
				t.Fatalf("second message: %q, want %s", got, c.next)
			}
		})
	}
}

// mxItem is what the MX stores: the message encrypted to the account.
func mxItem(t *testing.T, to *openpgp.Entity, msg []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := openpgp.Encrypt(&b, openpgp.EntityList{to}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(msg)
	w.Close()
	return b.Bytes()
}

func sigOf(msg []byte) string {
	head, _, _ := bytes.Cut(msg, []byte("\r\n\r\n"))
	for _, l := range strings.Split(string(head), "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, "X-Leap-Signature") {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
