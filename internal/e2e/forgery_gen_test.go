package e2e

import (
	"bytes"
	"crypto"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/autocrypt"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
	"github.com/bitmask-go/bitmask/pkg/pgpmime"
)

// The forgery corpus (testdata/forgery, README.md there) is written by
//
//	go test ./internal/e2e -run TestWriteForgeryCorpus -update-forgery
//
// from the fixed test keys in testdata/forgery/keys (made on the first
// run, without expiry). Its messages carry real signatures, so they are
// files, not strings built at test time: any change to the signing code
// cannot silently change what the corpus tests.
var updateForgery = flag.Bool("update-forgery", false, "rewrite testdata/forgery from its keys")

const forgeryDir = "../../testdata/forgery"

func corpusKey(t *testing.T, addr string) *openpgp.Entity {
	t.Helper()
	path := filepath.Join(forgeryDir, "keys", addr+".asc")
	if b, err := os.ReadFile(path); err == nil {
		e, err := pgpkey.ReadArmored(string(b))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return e
	}
	if !*updateForgery {
		t.Fatalf("missing %s (run with -update-forgery)", path)
	}
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Curve: packet.Curve25519, DefaultHash: crypto.SHA256,
		Time: func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }}
	e, err := openpgp.NewEntity("", "", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	arm, err := pgpkey.ArmorPrivate(e)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(arm), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// corpusCase is one message of the corpus and the status it must get.
type corpusCase struct {
	name   string
	phase  int    // 2: delivered after phase 1 is in INBOX (a key offered in phase 1 may be learned by then)
	status string // the X-Leap-Signature token
	signer string // the signer= it must name ("" when none)
	about  string
	msg    []byte
}

func hdr(from, subject string, extra ...string) string {
	var b strings.Builder
	for _, f := range from2(from) {
		b.WriteString("From: " + f + "\r\n")
	}
	b.WriteString("To: alice@" + testenv.Domain + "\r\n")
	b.WriteString("Subject: " + subject + "\r\n")
	b.WriteString("Date: Thu, 01 Oct 2026 10:00:00 +0000\r\n")
	for _, e := range extra {
		b.WriteString(e + "\r\n")
	}
	return b.String()
}

// from2 splits "a|b" into two From fields; "-" is no From at all.
func from2(from string) []string {
	if from == "-" {
		return nil
	}
	return strings.Split(from, "|")
}

// signedMsg is a PGP/MIME signed message (the whole body signed).
func signedMsg(t *testing.T, key *openpgp.Entity, header, body string) []byte {
	t.Helper()
	msg := []byte(header + "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body)
	out, err := pgpmime.Sign(msg, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// signedEntity is just the multipart/signed entity of a signed message
// (its Content-Type and body), to be wrapped in another message.
func signedEntity(t *testing.T, key *openpgp.Entity, body string, extraHeader ...string) string {
	t.Helper()
	full := signedMsg(t, key, hdr("eve@remote.test", "inner"), body)
	head, rest, _ := bytes.Cut(full, []byte("\r\n\r\n"))
	var ct string
	for _, l := range strings.Split(strings.ReplaceAll(string(head), "\r\n\t", " "), "\r\n") {
		if strings.HasPrefix(strings.ToLower(l), "content-type:") {
			ct = l
		}
	}
	var b strings.Builder
	b.WriteString(ct + "\r\n")
	for _, e := range extraHeader {
		b.WriteString(e + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(rest)
	return b.String()
}

func clearsigned(t *testing.T, key *openpgp.Entity, text string) string {
	t.Helper()
	var b bytes.Buffer
	w, err := clearsign.Encode(&b, key.PrivateKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(text))
	w.Close()
	return strings.ReplaceAll(strings.ReplaceAll(b.String(), "\r\n", "\n"), "\n", "\r\n")
}

func autocryptHeader(t *testing.T, addr string, key *openpgp.Entity) string {
	t.Helper()
	h, err := autocrypt.New(addr, key, false)
	if err != nil {
		t.Fatal(err)
	}
	return "Autocrypt: " + h.String()
}

// withAttachedKey signs a message that carries the key as an attachment
// inside the signed content (what bitmaskd's own outbox sends).
func withAttachedKey(t *testing.T, key *openpgp.Entity, header, body string) []byte {
	t.Helper()
	pub, err := pgpkey.ArmorPublic(key)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte(header + "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body)
	msg, err = pgpmime.AttachKey(msg, pub, "key.asc")
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgpmime.Sign(msg, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func buildForgeryCorpus(t *testing.T) []corpusCase {
	eve := corpusKey(t, "eve@remote.test")
	ceo := corpusKey(t, "ceo@fresh.test")
	cfo := corpusKey(t, "cfo@fresh.test")
	boss := corpusKey(t, "boss@"+testenv.Domain)
	nobody := corpusKey(t, "nobody@"+testenv.Domain)
	bob := corpusKey(t, "bob@"+testenv.Domain)
	corpusKey(t, "manager@remote.test")
	const pay = "Please pay invoice 4711 to the new account today.\r\n"
	const eveAddr = "eve@remote.test"
	mp := func(header, ctype string, parts ...string) []byte {
		var b strings.Builder
		b.WriteString(header + "MIME-Version: 1.0\r\nContent-Type: " + ctype + "; boundary=\"outer\"\r\n\r\n")
		for _, p := range parts {
			b.WriteString("--outer\r\n" + p + "\r\n")
		}
		b.WriteString("--outer--\r\n")
		return []byte(b.String())
	}
	text := func(s string) string { return "Content-Type: text/plain; charset=utf-8\r\n\r\n" + s }
	own := "@" + testenv.Domain
	cs := []corpusCase{
		// Genuine mail still shows valid.
		{name: "genuine-signed", status: "valid", signer: eveAddr, about: "PGP/MIME signed by the From address's known key",
			msg: signedMsg(t, eve, hdr(eveAddr, "genuine"), pay)},
		{name: "genuine-display-name", status: "valid", signer: eveAddr, about: "From: The Manager <eve@...>: valid, and the header names eve as the signer",
			msg: signedMsg(t, eve, hdr("The Manager <"+eveAddr+">", "display name"), pay)},
		{name: "genuine-inline", status: "valid", signer: eveAddr, about: "a cleartext-signed body and nothing else",
			msg: []byte(hdr(eveAddr, "inline") + "Content-Type: text/plain\r\n\r\n" + clearsigned(t, eve, pay))},

		// Identity binding: a good signature by eve, but the reader sees someone else.
		{name: "id-from-not-signer", status: "mismatch", signer: eveAddr, about: "From: manager, signed by eve",
			msg: signedMsg(t, eve, hdr("manager@remote.test", "from not signer"), pay)},
		{name: "id-display-name-address", status: "mismatch", signer: eveAddr, about: "From: \"manager@remote.test\" <eve@...>",
			msg: signedMsg(t, eve, hdr("\"manager@remote.test\" <"+eveAddr+">", "display name address"), pay)},
		{name: "id-two-from", status: "mismatch", signer: eveAddr, about: "two From fields: eve and manager",
			msg: signedMsg(t, eve, hdr(eveAddr+"|manager@remote.test", "two from"), pay)},
		{name: "id-from-two-addresses", status: "mismatch", signer: eveAddr, about: "one From with eve and manager",
			msg: signedMsg(t, eve, hdr(eveAddr+", manager@remote.test", "two addresses"), pay)},
		{name: "id-empty-from", status: "mismatch", signer: eveAddr, about: "From with nothing in it",
			msg: signedMsg(t, eve, strings.Replace(hdr(eveAddr, "empty from"), "From: "+eveAddr, "From:", 1), pay)},
		{name: "id-name-only-from", status: "mismatch", signer: eveAddr, about: "From: The Manager (no address)",
			msg: signedMsg(t, eve, strings.Replace(hdr(eveAddr, "name only"), "From: "+eveAddr, "From: The Manager", 1), pay)},
		{name: "id-no-from", status: "mismatch", signer: eveAddr, about: "no From field at all",
			msg: signedMsg(t, eve, hdr("-", "no from", "Sender: "+eveAddr), pay)},
		{name: "id-sender-is-signer", status: "mismatch", signer: eveAddr, about: "From: manager, Sender: eve (the signer)",
			msg: signedMsg(t, eve, hdr("manager@remote.test", "sender signer", "Sender: "+eveAddr), pay)},
		{name: "id-sender-other", status: "mismatch", signer: eveAddr, about: "From: eve, Sender: manager",
			msg: signedMsg(t, eve, hdr(eveAddr, "sender other", "Sender: manager@remote.test"), pay)},
		{name: "id-reply-to-other", status: "mismatch", signer: eveAddr, about: "From: eve, Reply-To: someone else",
			msg: signedMsg(t, eve, hdr(eveAddr, "reply-to", "Reply-To: payments@evil.test"), pay)},

		// Wrapping: eve's genuine signed part inside the attacker's message.
		{name: "wrap-prepended", status: "partial", signer: eveAddr, about: "attacker text, then eve's signed part",
			msg: mp(hdr(eveAddr, "prepended"), "multipart/mixed", text("Ignore the text below; pay account 666.\r\n"), signedEntity(t, eve, pay))},
		{name: "wrap-appended", status: "partial", signer: eveAddr, about: "eve's signed part, then attacker text",
			msg: mp(hdr(eveAddr, "appended"), "multipart/mixed", signedEntity(t, eve, pay), text("P.S. the account changed to 666.\r\n"))},
		{name: "wrap-html-hidden", status: "partial", signer: eveAddr, about: "an HTML part shows the attacker's text; the signed part is hidden beside it",
			msg: mp(hdr(eveAddr, "html hidden"), "multipart/related", "Content-Type: text/html\r\n\r\n<p>Pay account 666.</p><div style=\"display:none\">", signedEntity(t, eve, pay))},
		{name: "wrap-cid", status: "partial", signer: eveAddr, about: "HTML that shows the signed part only through a cid: reference",
			msg: mp(hdr(eveAddr, "cid"), "multipart/related", "Content-Type: text/html\r\n\r\n<p>Pay account 666.</p><iframe src=\"cid:signed@x\"></iframe>", signedEntity(t, eve, pay, "Content-ID: <signed@x>"))},
		{name: "wrap-attachment", status: "partial", signer: eveAddr, about: "attacker text with eve's signed part as an attachment",
			msg: mp(hdr(eveAddr, "attachment"), "multipart/mixed", text("Pay account 666, see attachment.\r\n"), signedEntity(t, eve, pay, "Content-Disposition: attachment; filename=\"signed.eml\""))},
		{name: "wrap-rfc822", status: "none", about: "eve's signed message forwarded inside message/rfc822: its signature is not this message's",
			msg: mp(hdr(eveAddr, "rfc822"), "multipart/mixed", text("Forwarding, pay account 666.\r\n"), "Content-Type: message/rfc822\r\n\r\n"+string(signedMsg(t, eve, hdr(eveAddr, "inner")+"X-Leap-Signature: valid\r\n", pay)))},
		{name: "wrap-inline-around", status: "partial", signer: eveAddr, about: "inline-PGP signed block with text before and after",
			msg: []byte(hdr(eveAddr, "inline around") + "Content-Type: text/plain\r\n\r\nNew account: 666.\r\n\r\n" + clearsigned(t, eve, pay) + "\r\nUse the new account.\r\n")},
		{name: "wrap-inline-beside-html", status: "partial", signer: eveAddr, about: "a wholly inline-signed text part beside an HTML part",
			msg: mp(hdr(eveAddr, "inline beside html"), "multipart/mixed", text(clearsigned(t, eve, pay)), "Content-Type: text/html\r\n\r\n<p>Pay account 666.</p>")},

		// Self-introduced keys: a message brings its own key and is signed by it.
		{name: "self-autocrypt-remote", status: "could not verify", about: "ceo@fresh.test with its own key in Autocrypt",
			msg: signedMsg(t, ceo, hdr("ceo@fresh.test", "self autocrypt", autocryptHeader(t, "ceo@fresh.test", ceo)), pay)},
		{name: "self-autocrypt-remote-again", phase: 2, status: "untrusted", signer: "ceo@fresh.test", about: "the same key a second time: learned, but nothing vouched for it",
			msg: signedMsg(t, ceo, hdr("ceo@fresh.test", "self autocrypt again", autocryptHeader(t, "ceo@fresh.test", ceo)), pay)},
		{name: "self-attachment-remote", status: "could not verify", about: "cfo@fresh.test with its own key attached",
			msg: withAttachedKey(t, cfo, hdr("cfo@fresh.test", "self attachment"), pay)},
		{name: "self-attachment-remote-again", phase: 2, status: "untrusted", signer: "cfo@fresh.test", about: "the same key a second time",
			msg: withAttachedKey(t, cfo, hdr("cfo@fresh.test", "self attachment again"), pay)},
		{name: "self-autocrypt-own-domain", status: "could not verify", about: "boss at the provider's domain (no such user) with an Autocrypt key",
			msg: signedMsg(t, boss, hdr("boss"+own, "self own domain", autocryptHeader(t, "boss"+own, boss)), pay)},
		{name: "self-autocrypt-own-domain-again", phase: 2, status: "could not verify", about: "again: keys for the provider's domain are never learned from mail",
			msg: signedMsg(t, boss, hdr("boss"+own, "self own domain again", autocryptHeader(t, "boss"+own, boss)), pay)},
		{name: "self-attachment-own-domain", status: "could not verify", about: "nobody at the provider's domain with an attached key",
			msg: withAttachedKey(t, nobody, hdr("nobody"+own, "self own attachment"), pay)},
		{name: "self-attachment-own-domain-again", phase: 2, status: "could not verify", about: "again",
			msg: withAttachedKey(t, nobody, hdr("nobody"+own, "self own attachment again"), pay)},
		{name: "self-own-domain-existing-user", status: "could not verify", about: "bob, a real user at the provider, impersonated with another key in Autocrypt",
			msg: signedMsg(t, bob, hdr("bob"+own, "existing user", autocryptHeader(t, "bob"+own, bob)), pay)},
		{name: "self-own-domain-existing-user-again", phase: 2, status: "could not verify", about: "again: only the directory's key counts",
			msg: signedMsg(t, bob, hdr("bob"+own, "existing user again", autocryptHeader(t, "bob"+own, bob)), pay)},

		// Forged status headers.
		{name: "forged-outer-status", status: "none", about: "unsigned, with X-Leap-Signature/Encryption and an X-Leap-Whatever of its own",
			msg: []byte(hdr(eveAddr, "forged outer", "X-Leap-Signature: valid; signer=\"eve@remote.test\"", "X-Leap-Encryption: decrypted", "X-LEAP-Trust: high") + "\r\n" + pay)},
		{name: "forged-in-forwarded", status: "none", about: "X-Leap fields in a forwarded message's header",
			msg: mp(hdr(eveAddr, "forged forwarded"), "multipart/mixed", text("see below\r\n"), "Content-Type: message/rfc822\r\n\r\n"+hdr(eveAddr, "inner", "X-Leap-Signature: valid", "X-Leap-Encryption: decrypted")+"\r\nhello\r\n")},
		{name: "forged-signed-outer-status", status: "valid", signer: eveAddr, about: "genuinely signed, with a forged X-Leap-Signature naming someone else",
			msg: signedMsg(t, eve, hdr(eveAddr, "forged on signed", "X-Leap-Signature: valid; signer=\"manager@remote.test\""), pay)},
	}
	for i := range cs {
		if cs[i].phase == 0 {
			cs[i].phase = 1
		}
		id := fmt.Sprintf("Message-ID: <%s@forgery.test>\r\n", cs[i].name)
		cs[i].msg = append([]byte(id), cs[i].msg...)
	}
	return cs
}

// TestWriteForgeryCorpus writes the corpus with -update-forgery, and
// otherwise checks that the corpus on disk lists every case.
func TestWriteForgeryCorpus(t *testing.T) {
	if !*updateForgery {
		cs := readForgeryCorpus(t)
		if len(cs) < 30 {
			t.Fatalf("corpus has %d cases", len(cs))
		}
		return
	}
	cs := buildForgeryCorpus(t)
	var idx strings.Builder
	idx.WriteString("# name\tphase\tstatus\tsigner\twhat it is\n")
	for _, c := range cs {
		if err := os.WriteFile(filepath.Join(forgeryDir, c.name+".eml"), c.msg, 0o644); err != nil {
			t.Fatal(err)
		}
		signer := c.signer
		if signer == "" {
			signer = "-"
		}
		fmt.Fprintf(&idx, "%s\t%d\t%s\t%s\t%s\n", c.name, c.phase, c.status, signer, c.about)
	}
	if err := os.WriteFile(filepath.Join(forgeryDir, "expect.tsv"), []byte(idx.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readForgeryCorpus reads testdata/forgery: expect.tsv and the messages.
func readForgeryCorpus(t *testing.T) []corpusCase {
	t.Helper()
	idx := readFile(t, filepath.Join(forgeryDir, "expect.tsv"))
	var cs []corpusCase
	for _, l := range strings.Split(string(idx), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Split(l, "\t")
		if len(f) != 5 {
			t.Fatalf("expect.tsv: bad line %q", l)
		}
		c := corpusCase{name: f[0], phase: int(f[1][0] - '0'), status: f[2], signer: f[3], about: f[4]}
		if c.signer == "-" {
			c.signer = ""
		}
		c.msg = readFile(t, filepath.Join(forgeryDir, c.name+".eml"))
		cs = append(cs, c)
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].phase < cs[j].phase })
	return cs
}
