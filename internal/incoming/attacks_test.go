package incoming_test

// Attacks on the X-Leap-* status fields, written by a security review
// (docs/signatures.md, docs/threat-model.md). Each test names the attack
// in its comment and asserts what docs/signatures.md promises, so it
// fails if the attack works again. The TestReviewAttack ones worked when
// the review was written and were closed after it (each comment keeps the
// suggested fix it led to); the TestReviewRegression ones were tried and
// failed from the start.
//
// Messages are processed as the MX stores them: the sender's message
// with the MX's Authentication-Results (authserv-id = the provider's
// domain, as leapd's default hostname) and Received on top, encrypted
// to the account's key (mxItem in vouch_test.go).

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/emersion/go-msgauth/dkim"

	"github.com/bitmask-go/bitmask/internal/contactkeys"
	"github.com/bitmask-go/bitmask/internal/daemon"
	"github.com/bitmask-go/bitmask/internal/incoming"
	"github.com/bitmask-go/bitmask/internal/mailstore"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
	"github.com/bitmask-go/bitmask/pkg/pgpmime"
)

// ---------------------------------------------------------------------
// The rig: a real provider, a real bitmaskd account and its Processor.

type attackRig struct {
	t   *testing.T
	a   *daemon.Account
	own *openpgp.Entity
}

func newAttackRig(t *testing.T, local string) *attackRig {
	t.Helper()
	p := testenv.StartProvider(t, testenv.Options{})
	r := testenv.StartDaemon(t, testenv.DaemonOptions{})
	a := testenv.NewUser(t, r.Daemon, p, local+"@"+testenv.Domain)
	own, err := a.CurrentKey()
	if err != nil {
		t.Fatal(err)
	}
	return &attackRig{t: t, a: a, own: own}
}

// mxAR is the MX's Authentication-Results with the given results (as
// mx.verdict.header writes it) and a Received field.
func mxAR(results ...string) string {
	if len(results) == 0 {
		results = []string{"dkim=none", "dmarc=none header.from=remote.test"}
	}
	return "Authentication-Results: " + testenv.Domain + ";\r\n\t" + strings.Join(results, ";\r\n\t") + "\r\n" +
		"Received: from mail.remote.test ([192.0.2.7])\r\n\tby mx." + testenv.Domain + " (leapd) with ESMTPS\r\n\tid 1\r\n\tfor <x@" + testenv.Domain + ">;\r\n\t" + time.Now().Format(time.RFC1123Z) + "\r\n"
}

// process runs msg (with the MX's fields prepended) through the account's
// Processor and returns what bitmaskd would store.
func (r *attackRig) process(msg []byte, ar ...string) []byte {
	r.t.Helper()
	item := mxItem(r.t, r.own, append([]byte(mxAR(ar...)), msg...))
	return r.a.Incoming.Process(r.t.Context(), item, openpgp.EntityList{r.own}, time.Now())
}

// know keeps e's public key for addr at level, as a key fetched by WKD.
func (r *attackRig) know(addr string, e *openpgp.Entity, level contactkeys.Level, source string) {
	r.t.Helper()
	pub, err := pgpkey.ArmorPublic(e)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.a.Contacts.Learn(addr, pub, level, source); err != nil {
		r.t.Fatalf("learn %s: %v", addr, err)
	}
}

func genKey(t *testing.T, addr string) *openpgp.Entity {
	t.Helper()
	e, err := pgpkey.Generate(addr, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func signPGPMIME(t *testing.T, e *openpgp.Entity, msg string) []byte {
	t.Helper()
	out, err := pgpmime.Sign([]byte(msg), e, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// splitMsg returns the header block (without the empty line) and the body.
func splitMsg(m []byte) (string, string) {
	h, b, _ := strings.Cut(string(m), "\r\n\r\n")
	return h, b
}

// headerValue is the value of the first field called name in msg's top
// header (name compared after trimming blanks before the colon, as
// imapd's headerFields and pgpmime's parser do).
func headerValue(msg []byte, name string) string {
	h, _ := splitMsg(msg)
	var v string
	found := false
	for _, l := range strings.Split(strings.ReplaceAll(h, "\r\n\t", " "), "\r\n") {
		k, val, ok := strings.Cut(l, ":")
		if ok && !found && strings.EqualFold(strings.TrimRight(k, " \t"), name) {
			v, found = strings.TrimSpace(val), true
		}
	}
	return v
}

// signedEntity turns a PGP/MIME signed message into the entity a sender
// nests in another message (its Content-Type field and body).
func signedEntity(t *testing.T, signed []byte) string {
	t.Helper()
	ct := headerValue(signed, "Content-Type")
	if !strings.HasPrefix(ct, "multipart/signed") {
		t.Fatalf("not a signed message: %q", ct)
	}
	_, body := splitMsg(signed)
	return "Content-Type: " + ct + "\r\n\r\n" + body
}

func clearsigned(t *testing.T, e *openpgp.Entity, text string) string {
	t.Helper()
	var b bytes.Buffer
	w, err := clearsign.Encode(&b, e.PrivateKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(text))
	w.Close()
	return strings.ReplaceAll(strings.ReplaceAll(b.String(), "\r\n", "\n"), "\n", "\r\n")
}

func armoredTo(t *testing.T, to *openpgp.Entity, text string) string {
	t.Helper()
	var b bytes.Buffer
	aw, err := armor.Encode(&b, "PGP MESSAGE", nil)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := openpgp.Encrypt(aw, openpgp.EntityList{to}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pw.Write([]byte(text))
	pw.Close()
	aw.Close()
	return strings.ReplaceAll(strings.ReplaceAll(b.String(), "\r\n", "\n"), "\n", "\r\n")
}

func encOf(msg []byte) string { return headerValue(msg, "X-Leap-Encryption") }

func status(sig string) string { tok, _, _ := strings.Cut(sig, ";"); return tok }

// wantNotShownAsSigned fails when sig is valid or partial naming signer:
// the reader would believe signer wrote what the message shows.
func wantNotShownAsSigned(t *testing.T, sig, signer string) {
	t.Helper()
	if st := status(sig); (st == "valid" || st == "partial") && strings.Contains(sig, `signer="`+signer+`"`) {
		t.Errorf("ATTACK WORKS: X-Leap-Signature: %s", sig)
	}
}

// wantNotValid fails when sig is "valid": something shown is not covered,
// or the author is not one clear address.
func wantNotValid(t *testing.T, sig string) {
	t.Helper()
	if status(sig) == "valid" {
		t.Errorf("ATTACK WORKS: X-Leap-Signature: %s", sig)
	}
}

const (
	boss = "boss@company.test"
	eve  = "eve@attacker.test"
)

// ---------------------------------------------------------------------
// 1. Key learning: a certification by the kept key on ANY user ID of the
// offered key lets it replace the kept key, at the kept key's level.
//
// Attack: Carol's key carries a certification by Boss's key on Carol's
// own user ID (an ordinary key signing). Carol adds a self-signed user ID
// boss@company.test to her key and mails it as Boss (Autocrypt, no
// signature, no DKIM). keymanager.mayReplace's certifiedBy accepts a
// certification on any user ID, not only on the one for the address, so
// Carol's key replaces Boss's key at provider_trust. Carol then signs
// anything as Boss: "valid; signer=boss@company.test".
//
// Suggested fix: certifiedBy must require the certification on the user
// ID whose email is the address being replaced (and the new key learned
// from mail should never get more than what vouched for the message).
func TestReviewAttackCertificationOnOtherUserIDReplacesKey(t *testing.T) {
	r := newAttackRig(t, "certvictim")
	bossKey := genKey(t, boss)
	r.know(boss, bossKey, contactkeys.ProviderTrust, "wkd")

	carol := genKey(t, "carol@carol.test")
	var carolID string
	for name := range carol.Identities {
		carolID = name
	}
	// Boss certifies Carol's own user ID (a key signing party).
	if err := carol.SignIdentity(carolID, bossKey, nil); err != nil {
		t.Fatal(err)
	}
	// Carol adds Boss's address to her key, self-signed.
	if err := carol.AddUserId("Boss", "", boss, &packet.Config{}); err != nil {
		t.Fatal(err)
	}
	var kd bytes.Buffer
	if err := carol.Serialize(&kd); err != nil {
		t.Fatal(err)
	}
	ac := "addr=" + boss + "; keydata=" + base64.StdEncoding.EncodeToString(kd.Bytes())
	first := []byte("From: " + boss + "\r\nTo: x@" + testenv.Domain + "\r\nSubject: my new key\r\nAutocrypt: " + ac +
		"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nhi\r\n")
	r.process(first)

	kept, err := r.a.Contacts.Get(boss)
	if err != nil {
		t.Fatal(err)
	}
	if kept.Fingerprint == pgpkey.Fingerprint(carol) {
		t.Errorf("ATTACK WORKS: Carol's key replaced Boss's: level %s source %s vouch %q", kept.Level, kept.Source, kept.Vouch)
	}
	forged := signPGPMIME(t, carol, "From: "+boss+"\r\nSubject: wire transfer\r\nContent-Type: text/plain\r\n\r\nPlease wire 50,000 EUR to XX00 1234 today.\r\n")
	out := r.process(forged)
	wantNotShownAsSigned(t, sigOf(out), boss)
}

// ---------------------------------------------------------------------
// 2. Key learning: DKIM vouches for the domain's signed fields, not for
// an Autocrypt header it does not cover.
//
// Attack: Eve obtains any DKIM-signed message from boss@company.test
// (Boss answered one of her mails; h=from:to:subject:date:message-id, as
// large providers sign). She adds an Autocrypt header with her own key
// for boss@company.test and sends it to the victim. The DKIM signature
// still passes (Autocrypt is not in h=), the MX records
// dkim=pass header.d=company.test, and bitmaskd learns Eve's key for Boss
// at weak_chain (vouch=dkim:company.test). Every later mail Eve signs as
// Boss is "valid".
//
// Suggested fix: a DKIM pass only vouches for a key that the DKIM
// signature covers: the MX should record which fields the passing
// signature signed (or the body length l=), and bitmaskd should require
// "autocrypt" in h= (and no l=, for attached keys); otherwise learn at
// unvouched.
func TestReviewAttackDKIMReplayWithAddedAutocrypt(t *testing.T) {
	r := newAttackRig(t, "dkimvictim")

	// company.test's DKIM key and Boss's genuine, DKIM-signed mail to Eve.
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	genuine := "From: Boss <" + boss + ">\r\nTo: " + eve + "\r\nSubject: Re: lunch\r\nDate: " + time.Now().Format(time.RFC1123Z) +
		"\r\nMessage-ID: <1@company.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nSure, noon is fine.\r\n"
	var signed bytes.Buffer
	if err := dkim.Sign(&signed, strings.NewReader(genuine), &dkim.SignOptions{
		Domain: "company.test", Selector: "s1", Signer: priv,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
		HeaderKeys: []string{"From", "To", "Subject", "Date", "Message-ID"},
	}); err != nil {
		t.Fatal(err)
	}
	// Eve adds her key for Boss.
	eveKey := genKey(t, boss) // Eve's key, with Boss's address as user ID
	var kd bytes.Buffer
	if err := eveKey.Serialize(&kd); err != nil {
		t.Fatal(err)
	}
	replayed := []byte("Autocrypt: addr=" + boss + "; keydata=" + base64.StdEncoding.EncodeToString(kd.Bytes()) + "\r\n" + signed.String())

	// What the MX's DKIM check (go-msgauth, as mx.checkDKIM) says of it.
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(replayed), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if name != "s1._domainkey.company.test" {
				return nil, fmt.Errorf("no such name %s", name)
			}
			return []string{"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)}, nil
		},
	})
	if err != nil || len(verifs) != 1 || verifs[0].Err != nil {
		t.Fatalf("DKIM of the replayed message: %v %v", err, verifs)
	}
	t.Logf("the replayed message with Eve's Autocrypt header still passes DKIM for %s", verifs[0].Domain)

	r.process(replayed, "dkim=pass header.d=company.test header.i=@company.test", "dmarc=pass header.from=company.test")
	if kept, err := r.a.Contacts.Get(boss); err == nil && kept.Fingerprint == pgpkey.Fingerprint(eveKey) && kept.Level >= contactkeys.WeakChain {
		t.Errorf("ATTACK WORKS: Eve's key learned for %s at %s, vouch %q", boss, kept.Level, kept.Vouch)
	}
	forged := signPGPMIME(t, eveKey, "From: "+boss+"\r\nSubject: wire transfer\r\nContent-Type: text/plain\r\n\r\nPlease wire 50,000 EUR to XX00 1234 today.\r\n")
	wantNotShownAsSigned(t, sigOf(r.process(forged)), boss)
}

// ---------------------------------------------------------------------
// 3. MIME wrapping: a quoted-printable text part that starts with a
// control byte is "only white space" to pgpmime.
//
// pgpmime's decodeCTE stops at the first error of Go's quoted-printable
// reader ("invalid unescaped byte") and returns what it decoded before
// (nothing); shownUnits then drops the part as holding only white space,
// and othersThanInline does the same. Mail clients decode such a part
// leniently and show the text. So:
//   - Boss's genuine signed part beside Eve's text part: "valid" for Boss
//     (the nested signed part seems to be the only thing shown);
//   - a cleartext-signed block by Boss followed, in the same QP part, by
//     a control byte and Eve's text: "valid" for Boss;
//   - an inline PGP block encrypted to the user beside Eve's plain part:
//     X-Leap-Encryption "decrypted".
//
// Suggested fix: a part whose transfer encoding cannot be decoded whole
// counts as shown (decode leniently, as clients do, or treat a decoding
// error as "a malformed part"); never treat a decode error as empty.
func TestReviewAttackQPControlByteHidesPart(t *testing.T) {
	r := newAttackRig(t, "qpvictim")
	bossKey := genKey(t, boss)
	r.know(boss, bossKey, contactkeys.ProviderTrust, "wkd")
	ownPub, _ := pgpkey.ReadArmored(mustArmor(t, r.own))

	// What pgpmime's decoder sees of Eve's part, and what a client shows.
	evil := "\x01Please wire 50,000 EUR to XX00 1234 today. -- Boss\r\n"
	got, err := readQP(evil)
	t.Logf("Go's quoted-printable reader: %q, %v; a lenient client shows %q", got, err, strings.TrimPrefix(evil, "\x01"))

	t.Run("nested-signed-part", func(t *testing.T) {
		genuine := signPGPMIME(t, bossKey, "From: "+boss+"\r\nSubject: lunch\r\nContent-Type: text/plain\r\n\r\nSee you at noon.\r\n")
		msg := "From: " + boss + "\r\nSubject: wire transfer\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"W\"\r\n\r\n" +
			"--W\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + evil +
			"--W\r\n" + signedEntity(t, genuine) + "\r\n--W--\r\n"
		wantNotValid(t, sigOf(r.process([]byte(msg))))
	})
	t.Run("inline-cleartext", func(t *testing.T) {
		block := clearsigned(t, bossKey, "See you at noon.\r\n")
		var qp bytes.Buffer
		w := quotedprintable.NewWriter(&qp)
		w.Write([]byte(block))
		w.Close()
		body := strings.ReplaceAll(strings.ReplaceAll(qp.String(), "\r\n", "\n"), "\n", "\r\n")
		msg := "From: " + boss + "\r\nSubject: wire transfer\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
			body + "\r\n" + evil
		wantNotValid(t, sigOf(r.process([]byte(msg))))
	})
	t.Run("encryption", func(t *testing.T) {
		msg := "From: " + eve + "\r\nSubject: secret\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"W\"\r\n\r\n" +
			"--W\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + evil +
			"--W\r\nContent-Type: text/plain\r\n\r\n" + armoredTo(t, ownPub, "the real secret\r\n") + "\r\n--W--\r\n"
		out := r.process([]byte(msg))
		if enc := encOf(out); enc == "decrypted" {
			t.Errorf("ATTACK WORKS: X-Leap-Encryption: %s, but Eve's plain text part is shown beside the decrypted one", enc)
		}
	})
}

func readQP(s string) (string, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(quotedprintable.NewReader(strings.NewReader(s)))
	return b.String(), err
}

func mustArmor(t *testing.T, e *openpgp.Entity) string {
	t.Helper()
	s, err := pgpkey.ArmorPublic(e)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ---------------------------------------------------------------------
// 4. Multiple signatures: inline signed blocks by different signers are
// merged as if one signer signed them all.
//
// inlineVerify merges the blocks of a text part into one state whose
// signer is the first valid one, and othersThanInline never lists other
// text parts holding inline OpenPGP. So a replayed block Boss really
// signed, followed by a block Eve signed with her own key (kept as a
// contact at any level, even unvouched: the "every kept key" retry finds
// it), is "valid; signer=boss" for everything, Eve's text included.
//
// Suggested fix: a valid inline block covers only itself; blocks (and
// inline parts) signed by another key, or by none, are outside it. Report
// valid only when every shown unit is covered by the same signer.
func TestReviewAttackInlineBlocksOfSeveralSigners(t *testing.T) {
	r := newAttackRig(t, "multisig")
	bossKey := genKey(t, boss)
	r.know(boss, bossKey, contactkeys.ProviderTrust, "wkd")
	eveKey := genKey(t, eve)
	r.know(eve, eveKey, contactkeys.Unvouched, "autocrypt") // e.g. from an earlier Autocrypt header

	bossBlock := clearsigned(t, bossKey, "I approve.\r\n") // replayed: Boss really signed this
	eveBlock := clearsigned(t, eveKey, "Also wire 50,000 EUR to XX00 1234 today. -- Boss\r\n")

	t.Run("one-part", func(t *testing.T) {
		msg := "From: " + boss + "\r\nSubject: budget\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n" + bossBlock + "\r\n" + eveBlock
		wantNotValid(t, sigOf(r.process([]byte(msg))))
	})
	t.Run("two-parts", func(t *testing.T) {
		msg := "From: " + boss + "\r\nSubject: budget\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"W\"\r\n\r\n" +
			"--W\r\nContent-Type: text/plain\r\n\r\n" + bossBlock + "\r\n--W\r\nContent-Type: text/plain\r\n\r\n" + eveBlock + "\r\n--W--\r\n"
		wantNotValid(t, sigOf(r.process([]byte(msg))))
	})
}

// ---------------------------------------------------------------------
// 5. Identity binding, parser differential: "From :" (blank before the
// colon, RFC 5322 obs-optional syntax).
//
// net/mail (authorOf) files "From :" under the key "From " and never
// looks at it; pgpmime's parser, the MX, bitmaskd's own IMAP server
// (ENVELOPE, headerFields) and mail clients read it as From. A message
// with "From : boss" and then "From: eve", signed by Eve's key, has one
// From for authorOf (Eve) and is "valid; signer=eve", while the IMAP
// ENVELOPE (the message list) shows Boss; two From fields, which rule 3
// refuses. The same hides a Sender or Reply-To from rule 3 ("Reply-To :
// pay@evil.test" sends the reader's reply to Eve).
//
// Suggested fix: read the header with the same byte-level parser as
// pgpmime/imapd (names trimmed of blanks before the colon), or
// canonicalise m.Header keys with strings.TrimRight(k, " \t") before
// looking up From/Sender/Reply-To; treat any field whose trimmed name is
// From as a From field.
func TestReviewAttackFromWithBlankBeforeColon(t *testing.T) {
	r := newAttackRig(t, "colonvictim")
	eveKey := genKey(t, eve)
	r.know(eve, eveKey, contactkeys.ProviderTrust, "wkd")
	body := "Subject: wire transfer\r\nContent-Type: text/plain\r\n\r\nPlease wire 50,000 EUR to XX00 1234 today.\r\n"
	for _, c := range []struct{ name, header string }{
		{"from", "From : Boss <" + boss + ">\r\nFrom: " + eve + "\r\n"},
		{"from-tab", "From\t: Boss <" + boss + ">\r\nFrom: " + eve + "\r\n"},
		{"reply-to", "From: " + eve + "\r\nReply-To : pay@evil.test\r\n"},
		{"sender", "From: " + eve + "\r\nSender : " + boss + "\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := r.process(signPGPMIME(t, eveKey, c.header+body))
			sig := sigOf(out)
			if status(sig) == "valid" {
				t.Errorf("ATTACK WORKS: X-Leap-Signature: %s; yet the first From a byte-level parser (imapd ENVELOPE) reads is %q",
					sig, headerValue(out, "From"))
			}
		})
	}
}

// ---------------------------------------------------------------------
// 6. Identity binding: group syntax. The group's display name is never
// checked for an address.
//
// docs/signatures.md rule 3: the From field holds exactly one address,
// "not a group", and its display name holds no other address. net/mail
// returns a group's members without the group name, so
// From: "boss@company.test": eve@attacker.test; passes rule 3 and a
// message signed by Eve is "valid"; clients show the group name
// boss@company.test.
//
// Suggested fix: detect group syntax (a ':' outside quotes/comments/angle
// brackets before the address) and refuse it, or at least run
// addressInName over the group's display name.
func TestReviewAttackGroupNameShowsAddress(t *testing.T) {
	r := newAttackRig(t, "groupvictim")
	eveKey := genKey(t, eve)
	r.know(eve, eveKey, contactkeys.ProviderTrust, "wkd")
	for _, from := range []string{
		`"` + boss + `": ` + eve + `;`,
		`Boss at company.test: <` + eve + `>;`,
	} {
		t.Run(from, func(t *testing.T) {
			msg := "From: " + from + "\r\nSubject: wire transfer\r\nContent-Type: text/plain\r\n\r\nPlease wire 50,000 EUR.\r\n"
			wantNotValid(t, sigOf(r.process(signPGPMIME(t, eveKey, msg))))
		})
	}
}

// ---------------------------------------------------------------------
// 7. Identity binding: an RFC 2047 encoded word inside a quoted display
// name.
//
// net/mail does not decode encoded words inside a quoted-string (RFC 2047
// §5 forbids them there), so addressInName sees
// "=?utf-8?B?Ym9zc0Bjb21wYW55LnRlc3Q=?=" and no '@'. imapd puts that name
// into ENVELOPE as it is, and clients (Thunderbird, mutt, Apple Mail)
// decode encoded words in names anyway: the reader sees
// "boss@company.test" <eve@attacker.test>, signed "valid".
//
// Suggested fix: in addressInName, also decode encoded words found
// anywhere in the name (mime.WordDecoder.DecodeHeader on the name) before
// looking for '@'.
func TestReviewAttackEncodedWordInQuotedName(t *testing.T) {
	r := newAttackRig(t, "ewvictim")
	eveKey := genKey(t, eve)
	r.know(eve, eveKey, contactkeys.ProviderTrust, "wkd")
	word := "=?utf-8?B?" + base64.StdEncoding.EncodeToString([]byte(boss)) + "?="
	shown, _ := new(mime.WordDecoder).DecodeHeader(word)
	from := `"` + word + `" <` + eve + `>`
	a, err := mail.ParseAddress(from)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("net/mail name %q; a client decoding the name shows %q", a.Name, shown)
	msg := "From: " + from + "\r\nSubject: wire transfer\r\nContent-Type: text/plain\r\n\r\nPlease wire 50,000 EUR.\r\n"
	wantNotValid(t, sigOf(r.process(signPGPMIME(t, eveKey, msg))))
}

// ---------------------------------------------------------------------
// 8. MIME wrapping: the second part of multipart/signed may be anything
// that holds an armored signature somewhere.
//
// verifySigned decodes the second part and looks for "-----BEGIN PGP "
// anywhere in it, whatever its Content-Type; coverage never counts it.
// Eve takes Boss's genuine signed message and turns the signature part
// into text/html that shows her text and keeps the signature in a hidden
// element. bitmaskd says "valid" for Boss; a client that does not handle
// PGP/MIME (or treats the second part by its type, as a multipart/mixed
// fallback does) renders Eve's HTML.
//
// Suggested fix: require the second part to be application/pgp-signature
// (RFC 3156 §5) holding only the armored signature; otherwise invalid,
// or count the part as shown.
func TestReviewAttackSignaturePartAsHTML(t *testing.T) {
	r := newAttackRig(t, "sightml")
	bossKey := genKey(t, boss)
	r.know(boss, bossKey, contactkeys.ProviderTrust, "wkd")
	genuine := string(signPGPMIME(t, bossKey, "From: "+boss+"\r\nSubject: lunch\r\nContent-Type: text/plain\r\n\r\nSee you at noon.\r\n"))
	const sigHdr = "Content-Type: application/pgp-signature; name=\"signature.asc\"\r\nContent-Description: OpenPGP digital signature\r\nContent-Disposition: attachment; filename=\"signature.asc\"\r\n\r\n"
	if !strings.Contains(genuine, sigHdr) {
		t.Fatalf("unexpected Sign output:\n%s", genuine)
	}
	forged := strings.Replace(genuine, sigHdr,
		"Content-Type: text/html; charset=us-ascii\r\nContent-Disposition: inline\r\n\r\n<p><b>Please wire 50,000 EUR to XX00 1234 today. -- Boss</b></p><div style=\"display:none\">\r\n", 1)
	forged = strings.Replace(forged, "-----END PGP SIGNATURE-----\r\n", "-----END PGP SIGNATURE-----\r\n</div>\r\n", 1)
	wantNotValid(t, sigOf(r.process([]byte(forged))))
}

// ---------------------------------------------------------------------
// 9. MIME parser differential: a root Content-Type that only pgpmime's
// lenient fallback parses.
//
// pgpmime.parseMediaType recovers parameters mime.ParseMediaType refuses
// (here a second, different boundary parameter); imapd's contentType (BODYSTRUCTURE) uses
// mime.ParseMediaType and describes such a root as text/plain, so a
// client that renders from BODYSTRUCTURE shows the whole body as text,
// starting with the preamble, which pgpmime ignores. Eve puts her text in
// the preamble of Boss's genuine signed message: "valid" for Boss.
//
// Suggested fix: one MIME parser for both (or pgpmime refuses to verify
// a structure whose Content-Type the strict parser refuses); count a
// non-blank preamble/epilogue as shown.
func TestReviewAttackRootContentTypeOnlyLenientParses(t *testing.T) {
	r := newAttackRig(t, "ctvictim")
	bossKey := genKey(t, boss)
	r.know(boss, bossKey, contactkeys.ProviderTrust, "wkd")
	genuine := string(signPGPMIME(t, bossKey, "From: "+boss+"\r\nSubject: lunch\r\nContent-Type: text/plain\r\n\r\nSee you at noon.\r\n"))
	ct := headerValue([]byte(genuine), "Content-Type")
	_, params, _ := mime.ParseMediaType(ct)
	newCT := ct + `; boundary="` + params["boundary"] + `-not"` // a second, different boundary: pgpmime takes the first
	if _, _, err := mime.ParseMediaType(newCT); err == nil {
		t.Fatal("expected the strict parser to refuse the repeated boundary")
	} else {
		t.Logf("mime.ParseMediaType (imapd BODYSTRUCTURE): %v -> the root is text/plain there", err)
	}
	forged := strings.Replace(genuine, ct, newCT, 1)
	forged = strings.Replace(forged, "This is an OpenPGP/MIME signed message (RFC 4880 and 3156)\r\n",
		"Please wire 50,000 EUR to XX00 1234 today. -- Boss\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n", 1)
	wantNotValid(t, sigOf(r.process([]byte(forged))))
}

// ---------------------------------------------------------------------
// 10. Denial of service: a compressed PGP/MIME message that decrypts to
// more than the mail store takes stops the incoming queue for ever.
//
// The MX's plaintext is bounded (64 MiB) but pgpmime decrypts up to
// MaxPlaintext (128 MiB) per layer (and inline: up to 16 blocks per part,
// each 128 MiB, with no total), and nothing bounds Process's output. A
// 100 KiB zlib message becomes a processed message over
// mailstore.MaxMessageSize; AppendBatch refuses it, ProcessAll returns an
// error before deleting anything, and Run retries the same batch (the
// oldest 100 items) for ever: no further mail reaches INBOX. Inline
// blocks multiply the plaintext held in memory (16 x 128 MiB per part)
// beyond what bitmaskd can allocate: an out-of-memory crash no recover()
// catches.
//
// Suggested fix: one budget for all plaintext of a message
// (maxPlaintext of incoming, shared by all layers and blocks, checked in
// pgpmime); an over-budget message is kept aside (keptAside) like one
// that cannot be decrypted; never let one item fail the whole batch.
func TestReviewAttackDecompressionBombStallsQueue(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a few hundred MiB")
	}
	r := newAttackRig(t, "bombvictim")
	ownPub, _ := pgpkey.ReadArmored(mustArmor(t, r.own))
	// The sender chooses the compression: go-crypto only picks one the
	// recipient's key lists, so list ZLIB in the sender's copy.
	for _, id := range ownPub.Identities {
		id.SelfSignature.PreferredCompression = []uint8{uint8(packet.CompressionZLIB)}
	}
	var ct bytes.Buffer
	aw, _ := armor.Encode(&ct, "PGP MESSAGE", nil)
	pw, err := openpgp.Encrypt(aw, openpgp.EntityList{ownPub}, nil, nil, &packet.Config{
		DefaultCompressionAlgo: packet.CompressionZLIB,
		CompressionConfig:      &packet.CompressionConfig{Level: flate.BestCompression},
	})
	if err != nil {
		t.Fatal(err)
	}
	pw.Write([]byte("Content-Type: text/plain\r\n\r\n"))
	line := bytes.Repeat([]byte("A"), 998)
	line = append(line, '\r', '\n')
	for n := 0; n <= mailstore.MaxMessageSize; n += len(line) {
		pw.Write(line)
	}
	pw.Close()
	aw.Close()
	msg := "From: " + eve + "\r\nSubject: hello\r\nMIME-Version: 1.0\r\nContent-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"E\"\r\n\r\n" +
		"--E\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--E\r\nContent-Type: application/octet-stream\r\n\r\n" + ct.String() + "\r\n--E--\r\n"
	t.Logf("the message the MX takes: %d bytes", len(msg))
	out := r.process([]byte(msg))
	r.wantStorable(t, out, len(msg))

	// The queue: the bomb, then an ordinary message. ProcessAll stores
	// neither and deletes neither, at every retry.
	q := &fakeQueue{items: map[string][]byte{
		"1-bomb": mxItem(t, r.own, append([]byte(mxAR()), msg...)),
		"2-ok":   mxItem(t, r.own, append([]byte(mxAR()), "From: "+boss+"\r\nSubject: ordinary\r\nContent-Type: text/plain\r\n\r\nhello\r\n"...)),
	}}
	in := r.a.Incoming
	p := &incoming.Processor{Queue: q, Mail: in.Mail, Keys: in.Keys, Own: in.Own, DocID: in.DocID, Log: in.Log, Address: in.Address, Domain: in.Domain}
	for try := 1; try <= 2; try++ {
		err := p.ProcessAll(t.Context())
		t.Logf("ProcessAll, try %d: %v; items left %d", try, err, len(q.items))
	}
	if _, ok := q.items["2-ok"]; ok {
		t.Errorf("ATTACK WORKS: the ordinary message behind the bomb never leaves the queue")
	}
}

// fakeQueue is an incoming queue in memory (oldest id first).
type fakeQueue struct{ items map[string][]byte }

func (q *fakeQueue) ListIncoming(ctx context.Context, limit int) (*providerapi.IncomingList, error) {
	var ids []string
	for id := range q.items {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	l := &providerapi.IncomingList{}
	for _, id := range ids {
		l.Items = append(l.Items, providerapi.IncomingItem{ID: id, Size: len(q.items[id]), Received: time.Now()})
	}
	return l, nil
}

func (q *fakeQueue) Incoming(ctx context.Context, id string) ([]byte, error) { return q.items[id], nil }

func (q *fakeQueue) DeleteIncoming(ctx context.Context, id string) error {
	delete(q.items, id)
	return nil
}

// TestReviewAttackMessageAtMXLimitStallsQueue: the same stall without any
// OpenPGP. The MX takes messages up to 64 MiB (mx.DefaultMaxSize, SIZE in
// EHLO) and then adds its Authentication-Results and Received fields, so
// a message of exactly 64 MiB decrypts to more than incoming's
// maxPlaintext (also 64 MiB): decryptOuter refuses it and keptAside
// stores the item armored, a third larger, which AppendBatch refuses.
// (A message a few bytes smaller passes decryptOuter and is pushed over
// the limit by the two X-Leap fields.)
//
// Suggested fix: incoming's limits must allow for what the MX adds and
// what bitmaskd adds; a kept-aside item must fit (store it as a blob
// reference, or truncate with a note); one item that cannot be stored
// must be set aside, not fail the batch.
func TestReviewAttackMessageAtMXLimitStallsQueue(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a few hundred MiB")
	}
	r := newAttackRig(t, "limitvictim")
	const mxMax = 64 << 20 // mx.DefaultMaxSize
	var b bytes.Buffer
	b.WriteString("From: " + eve + "\r\nSubject: big\r\nContent-Type: text/plain\r\n\r\n")
	line := append(bytes.Repeat([]byte("A"), 998), '\r', '\n')
	for b.Len()+len(line) <= mxMax {
		b.Write(line)
	}
	b.Write(bytes.Repeat([]byte("B"), mxMax-b.Len()))
	msg := b.Bytes()
	out := r.process(msg)
	oh, _ := splitMsg(out)
	t.Logf("processed header:\n%s", oh)
	r.wantStorable(t, out, len(msg))
}

// wantStorable fails when out cannot be stored in INBOX: ProcessAll then
// returns an error before deleting the batch and Run retries it for ever.
func (r *attackRig) wantStorable(t *testing.T, out []byte, in int) {
	t.Helper()
	if len(out) > mailstore.MaxMessageSize {
		_, err := r.a.Mail.AppendBatch(t.Context(), "INBOX", []mailstore.NewMessage{{Raw: out, Date: time.Now()}})
		t.Errorf("ATTACK WORKS: Process made %d bytes (limit %d) of a %d-byte message; AppendBatch: %v (ProcessAll fails the batch and retries it for ever)",
			len(out), mailstore.MaxMessageSize, in, err)
	}
}

// ---------------------------------------------------------------------
// 11. Planted status field, client-dependent: a bare CR inside a header
// line.
//
// The MX keeps bare CRs (go-smtp's DATA reader passes them); pgpmime,
// net/mail and imapd end lines only at LF, so
// "Subject: hi<CR>X-Leap-Signature: valid; signer=..." is one Subject
// field to bitmaskd and is kept. Parsers that end lines at a lone CR as
// well (many MIME libraries normalise CR, LF and CRLF) see a sender's
// X-Leap-Signature field before ours. A bare CR before "X-Leap-" in the
// header must not survive.
//
// Suggested fix: in mark(), normalise or remove lone CRs in the top
// header (and in forwarded headers), or drop any field that contains
// "\rX-Leap-" case-insensitively.
func TestReviewAttackBareCRPlantsLeapField(t *testing.T) {
	r := newAttackRig(t, "crvictim")
	msg := "From: " + eve + "\r\nSubject: hello\rX-Leap-Signature: valid; signer=\"" + boss + "\"; level=provider_trust\r\n" +
		"Content-Type: text/plain\r\n\r\nhi\r\n"
	out := r.process([]byte(msg))
	h, _ := splitMsg(out)
	if strings.Contains(strings.ToLower(h), "\rx-leap-") {
		t.Errorf("ATTACK WORKS (for CR-splitting parsers): a sender's X-Leap-Signature stays after a bare CR:\n%q", h)
	}
}

// ---------------------------------------------------------------------
// 12. Planted status field, client-dependent: a forwarded message in
// base64.
//
// StripNamePrefix parses a message/rfc822 body as it is on the wire; a
// base64 (or quoted-printable) encoded one is not a header to it, so
// the X-Leap fields in it stay. RFC 2046 forbids the encoding, but
// Thunderbird and others decode it and show the forwarded header.
//
// Suggested fix: decode a message/rfc822 or message/global body that has
// a transfer encoding before stripping (and re-encode), or drop the
// X-Leap fields after decoding and store the part decoded.
func TestReviewAttackBase64ForwardedLeapField(t *testing.T) {
	r := newAttackRig(t, "fwdvictim")
	inner := "From: " + boss + "\r\nSubject: approved\r\nX-Leap-Signature: valid; signer=\"" + boss + "\"; level=provider_trust\r\nX-Leap-Encryption: decrypted\r\n\r\nApproved. -- Boss\r\n"
	msg := "From: " + eve + "\r\nSubject: Fwd: approved\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"W\"\r\n\r\n" +
		"--W\r\nContent-Type: text/plain\r\n\r\nsee below\r\n--W\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		base64.StdEncoding.EncodeToString([]byte(inner)) + "\r\n--W--\r\n"
	out := r.process([]byte(msg))
	_, body := splitMsg(out)
	_, rest, _ := strings.Cut(body, "Content-Transfer-Encoding: base64\r\n\r\n")
	b64, _, _ := strings.Cut(rest, "\r\n")
	dec, _ := base64.StdEncoding.DecodeString(b64)
	if strings.Contains(strings.ToLower(string(dec)), "x-leap-") {
		t.Errorf("ATTACK WORKS (for clients that decode it): the forwarded message keeps its X-Leap fields:\n%s", dec)
	}
}

// ---------------------------------------------------------------------
// Regression tests: attacks tried that bitmaskd resists (these pass).

// TestReviewRegressionIdentity: identity tricks that are caught.
//   - two plain From fields, or one hidden in a folded line;
//   - "X-Leap-Signature :" with a blank before the colon is removed;
//   - a full-width domain that IDNA maps onto Boss's domain, signed by Eve;
//   - an encoded word (unquoted) in the display name with Boss's address;
//   - a comment holding Boss's address;
//   - Reply-To/Sender with another address.
func TestReviewRegressionIdentity(t *testing.T) {
	r := newAttackRig(t, "regident")
	eveKey := genKey(t, eve)
	r.know(eve, eveKey, contactkeys.ProviderTrust, "wkd")
	body := "Subject: wire transfer\r\nContent-Type: text/plain\r\n\r\nPlease wire 50,000 EUR.\r\n"
	for _, h := range []string{
		"From: " + eve + "\r\nFrom: " + boss + "\r\n",
		"From: " + eve + "\r\nFROM: " + boss + "\r\n",
		"From: =?utf-8?B?" + base64.StdEncoding.EncodeToString([]byte(boss)) + "?= <" + eve + ">\r\n",
		"From: " + eve + " (" + boss + ")\r\n",
		"From: \"boss\uff20company.test\" <" + eve + ">\r\n",
		"From: " + eve + "\r\nReply-To: " + boss + "\r\n",
		"From: " + eve + "\r\nSender: " + boss + "\r\n",
		"From: boss@ｃｏｍｐａｎｙ.test\r\n",
	} {
		t.Run(h, func(t *testing.T) {
			sig := sigOf(r.process(signPGPMIME(t, eveKey, h+body)))
			if status(sig) == "valid" {
				t.Errorf("X-Leap-Signature: %s", sig)
			}
		})
	}
	t.Run("x-leap-blank-before-colon", func(t *testing.T) {
		msg := "From: " + eve + "\r\nX-Leap-Signature : valid; signer=\"" + boss + "\"\r\nX-LEAP-Encryption\t: decrypted\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
		out := r.process([]byte(msg))
		if n := strings.Count(strings.ToLower(string(out)), "x-leap-"); n != 2 {
			t.Errorf("%d X-Leap fields:\n%s", n, out)
		}
	})
}

// TestReviewRegressionProtectedFrom: a protected From (RFC 9788) that no
// valid signature binds is not applied, and one Eve's key binds through a
// second user ID is a mismatch, not valid for Boss.
func TestReviewRegressionProtectedFrom(t *testing.T) {
	r := newAttackRig(t, "regprot")
	ownPub, _ := pgpkey.ReadArmored(mustArmor(t, r.own))
	eveKey := genKey(t, eve)
	if err := eveKey.AddUserId("Boss", "", boss, &packet.Config{}); err != nil {
		t.Fatal(err)
	}
	r.know(eve, eveKey, contactkeys.ProviderTrust, "wkd")
	inner := "Content-Type: text/plain; charset=utf-8; hp=\"cipher\"\r\nFrom: " + boss + "\r\nSubject: wire transfer\r\n\r\nPlease wire 50,000 EUR.\r\n"
	for _, signer := range []*openpgp.Entity{nil, eveKey} {
		got := r.process([]byte("From: " + eve + "\r\nSubject: ...\r\n" + pgpMIMEEncrypted(t, ownPub, signer, inner)))
		sig := sigOf(got)
		if status(sig) == "valid" && strings.Contains(sig, boss) {
			t.Errorf("signer %v: X-Leap-Signature: %s", signer != nil, sig)
		}
		if signer == nil && strings.Contains(headerValue(got, "From"), boss) {
			t.Errorf("an unsigned protected From replaced the outer one: From %q", headerValue(got, "From"))
		}
		t.Logf("signer %v: From %q, X-Leap-Signature: %s", signer != nil, headerValue(got, "From"), sig)
	}
}

// pgpMIMEEncrypted is the MIME-Version, Content-Type and body of a
// PGP/MIME encrypted message (signed by signer when not nil, the
// combined method) whose plaintext is entity.
func pgpMIMEEncrypted(t *testing.T, to, signer *openpgp.Entity, entity string) string {
	t.Helper()
	var ct bytes.Buffer
	aw, err := armor.Encode(&ct, "PGP MESSAGE", nil)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := openpgp.Encrypt(aw, openpgp.EntityList{to}, signer, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pw.Write([]byte(entity))
	pw.Close()
	aw.Close()
	return "MIME-Version: 1.0\r\nContent-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"E\"\r\n\r\n" +
		"--E\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--E\r\nContent-Type: application/octet-stream\r\n\r\n" +
		strings.ReplaceAll(strings.ReplaceAll(ct.String(), "\r\n", "\n"), "\n", "\r\n") + "\r\n--E--\r\n"
}

// TestReviewRegressionForgedAuthResults: an Authentication-Results field
// of the sender's with the provider's authserv-id, after the MX's, does
// not vouch; nor does a first field whose authserv-id differs in a
// comment or by a trailing dot.
func TestReviewRegressionForgedAuthResults(t *testing.T) {
	r := newAttackRig(t, "regar")
	for i, ar := range []string{
		// the MX's field says nothing; the sender's comes second
		"Authentication-Results: " + testenv.Domain + "; dkim=none\r\nAuthentication-Results: " + testenv.Domain + "; dkim=pass header.d=ar%d.test\r\n",
		"Authentication-Results: (" + testenv.Domain + ") mx.evil.test; dkim=pass header.d=ar%d.test\r\n",
		"Authentication-Results: " + testenv.Domain + ".evil.test; dkim=pass header.d=ar%d.test\r\n",
	} {
		from := fmt.Sprintf("ceo@ar%d.test", i)
		k := genKey(t, from)
		var kd bytes.Buffer
		k.Serialize(&kd)
		msg := fmt.Sprintf(ar, i) + "From: " + from + "\r\nAutocrypt: addr=" + from + "; keydata=" + base64.StdEncoding.EncodeToString(kd.Bytes()) +
			"\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
		item := mxItem(t, r.own, []byte(msg))
		r.a.Incoming.Process(t.Context(), item, openpgp.EntityList{r.own}, time.Now())
		if kept, err := r.a.Contacts.Get(from); err == nil && kept.Level >= contactkeys.WeakChain {
			t.Errorf("case %d: learned at %s vouch %q", i, kept.Level, kept.Vouch)
		}
	}
}

// ---------------------------------------------------------------------
// 13. Identity binding: a quoted local part holding '@'.
//
// net/mail drops the quotes of "boss@attacker.test"@PROVIDER, so the
// author is boss@attacker.test@PROVIDER; normAddr splits it at the LAST
// '@' (domain PROVIDER) but domainOf, used by every own-domain rule
// (signingKeys, signatureVerdict, learnOffered), cuts at the FIRST '@'
// (domain "attacker.test@PROVIDER"). So an address at the provider's
// domain escapes rule 5: keys for it are learned from mail, and a key
// not served by the provider's directory is not refused as such. The
// reader sees an address at the provider's own domain.
//
// Suggested fix: one function for the domain (after the last '@'), used
// everywhere (domainOf, Discovery.Find, alignment); or refuse From
// addresses whose local part holds '@' (or any quoted local part).
func TestReviewAttackQuotedLocalPartEscapesOwnDomainRule(t *testing.T) {
	r := newAttackRig(t, "quotedvictim")
	addr := `"boss@attacker.test"@` + testenv.Domain
	key := genKey(t, "boss@attacker.test@"+testenv.Domain)
	var kd bytes.Buffer
	key.Serialize(&kd)
	a, err := mail.ParseAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	msg := "From: " + addr + "\r\nSubject: hi\r\nAutocrypt: addr=" + a.Address + "; keydata=" + base64.StdEncoding.EncodeToString(kd.Bytes()) +
		"\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
	r.process([]byte(msg))
	if kept, err := r.a.Contacts.Get(a.Address); err == nil {
		t.Errorf("ATTACK WORKS: a key for %s (at the provider's domain) was learned from mail: level %s source %s", a.Address, kept.Level, kept.Source)
	}
}

// ---------------------------------------------------------------------
// 14. MIME wrapping, client-dependent: a delimiter line ended by a bare
// CR.
//
// pgpmime (and imapd) end lines only at LF, and the MX keeps bare CRs.
// Eve appends to the epilogue of Boss's genuine signed part
// "--W<CR>Content-Type: text/plain<CR><CR>her text" before the outer
// close delimiter: to pgpmime that is one line of the signed part's
// epilogue, not shown; a parser that also ends lines at a lone CR sees a
// delimiter of the outer multipart and a new text part. bitmaskd: valid.
//
// Suggested fix: treat a lone CR as a line break when splitting (or
// refuse/normalise bare CRs in every part before judging coverage), and
// count a non-blank epilogue of a signed part as shown.
func TestReviewAttackBareCRDelimiterAddsPart(t *testing.T) {
	r := newAttackRig(t, "crbody")
	bossKey := genKey(t, boss)
	r.know(boss, bossKey, contactkeys.ProviderTrust, "wkd")
	genuine := signPGPMIME(t, bossKey, "From: "+boss+"\r\nSubject: lunch\r\nContent-Type: text/plain\r\n\r\nSee you at noon.\r\n")
	msg := "From: " + boss + "\r\nSubject: wire transfer\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"W\"\r\n\r\n" +
		"--W\r\n" + signedEntity(t, genuine) +
		"--W\rContent-Type: text/plain\r\rPlease wire 50,000 EUR to XX00 1234 today. -- Boss\r\n--W--\r\n"
	wantNotValid(t, sigOf(r.process([]byte(msg))))
}
