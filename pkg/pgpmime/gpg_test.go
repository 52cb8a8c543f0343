package pgpmime

// Interoperability with GnuPG: messages made by gpg are processed by this
// package, and messages made here are decrypted and verified by gpg. The
// tests skip when gpg is not installed (apt-get install gnupg).

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/bitmask-go/bitmask/pkg/pgpkey"
)

type gpgEnv struct {
	t    *testing.T
	home string
}

func newGPG(t *testing.T) *gpgEnv {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("gpg not found on PATH: GnuPG interop tests skipped (apt-get install -y gnupg)")
	}
	// A short path: gpg-agent puts its socket in the home directory.
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	g := &gpgEnv{t: t, home: home}
	t.Cleanup(func() {
		if _, err := exec.LookPath("gpgconf"); err == nil {
			cmd := exec.Command("gpgconf", "--kill", "all")
			cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
			_ = cmd.Run()
		}
		os.RemoveAll(home)
	})
	return g
}

// run runs gpg and returns stdout and stderr (where --status-fd 2 puts the
// status lines).
func (g *gpgEnv) run(stdin []byte, args ...string) ([]byte, []byte, error) {
	g.t.Helper()
	base := []string{"--homedir", g.home, "--batch", "--yes", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", "", "--trust-model", "always", "--status-fd", "2"}
	cmd := exec.Command("gpg", append(base, args...)...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+g.home, "LC_ALL=C")
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.Bytes(), errb.Bytes(), err
}

func (g *gpgEnv) mustRun(stdin []byte, args ...string) []byte {
	g.t.Helper()
	out, errb, err := g.run(stdin, args...)
	if err != nil {
		g.t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, errb)
	}
	return out
}

// gpgFixture: our key (alice, made by pkg/pgpkey) imported into a gpg
// keyring, and a key made by gpg (bob, ed25519/cv25519 via future-default).
type gpgFixture struct {
	g      *gpgEnv
	alice  *openpgp.Entity // ours, private
	bobPub *openpgp.Entity // gpg's, public
}

const gpgBob = "bob@gpg.example"

func newGPGFixture(t *testing.T) *gpgFixture {
	g := newGPG(t)
	alice := testKey(t, "alice@example.org")
	pub, err := pgpkey.ArmorPublic(alice)
	if err != nil {
		t.Fatal(err)
	}
	g.mustRun([]byte(pub), "--import")
	g.mustRun(nil, "--quick-gen-key", "Bob <"+gpgBob+">", "future-default", "default", "1y")
	el, err := openpgp.ReadKeyRing(bytes.NewReader(g.mustRun(nil, "--export", gpgBob)))
	if err != nil || len(el) != 1 {
		t.Fatalf("read gpg key: %v", err)
	}
	return &gpgFixture{g: g, alice: alice, bobPub: el[0]}
}

func statusHas(t *testing.T, status []byte, prefixes ...string) {
	t.Helper()
	for _, p := range prefixes {
		if !bytes.Contains(status, []byte("[GNUPG:] "+p)) {
			t.Errorf("gpg status lacks %q:\n%s", p, status)
		}
	}
}

func TestGnuPGInterop(t *testing.T) {
	f := newGPGFixture(t)
	g := f.g
	own := list(f.alice)
	senders := list(f.bobPub)
	bobFpr := fingerprint(f.bobPub)
	aliceFpr := fingerprint(f.alice)

	t.Run("gpg PGP/MIME encrypted+signed", func(t *testing.T) {
		inner := crlf("Content-Type: text/plain; charset=utf-8; protected-headers=\"v1\"\nContent-Transfer-Encoding: quoted-printable\nSubject: Gr=C3=BC=C3=9Fe\nFrom: Bob <" + gpgBob + ">\n\nGr=C3=BC=C3=9Fe from GnuPG\n")
		armored := g.mustRun(inner, "--armor", "--encrypt", "--sign", "-r", "alice@example.org", "-u", gpgBob)
		msg := wrapEncrypted("From: Bob <"+gpgBob+">\nTo: alice@example.org\nSubject: ...\n", armored)
		res, err := Process(msg, own, senders, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if !res.Decrypted || res.Signature != SigValid || res.SignerFingerprint != bobFpr {
			t.Fatalf("Decrypted=%v (%v) Signature=%s (%v) fpr=%s", res.Decrypted, res.DecryptErr, res.Signature, res.SignatureErr, res.SignerFingerprint)
		}
		h := headerOf(t, res.Message)
		if got := getValue(h, "Subject"); got != "Gr=C3=BC=C3=9Fe" {
			t.Errorf("Subject = %q", got)
		}
		if !bytes.Contains(res.Message, []byte("Gr=C3=BC=C3=9Fe from GnuPG")) {
			t.Errorf("body:\n%s", res.Message)
		}
		// Without bob's key the signature cannot be checked.
		if res, _ := Process(msg, own, nil, time.Now()); !res.Decrypted || res.Signature != SigUnknownKey {
			t.Errorf("unknown signer: %v %s", res.Decrypted, res.Signature)
		}
	})

	t.Run("gpg inline encrypted", func(t *testing.T) {
		armored := g.mustRun([]byte("inline secret from gpg\n"), "--armor", "--encrypt", "--sign", "-r", "alice@example.org", "-u", gpgBob)
		msg := crlf("From: " + gpgBob + "\nSubject: inline\nContent-Type: text/plain; charset=us-ascii\n\n" + string(armored))
		if !IsEncrypted(msg) {
			t.Error("IsEncrypted = false")
		}
		res, _ := Process(msg, own, senders, time.Now())
		if !res.Decrypted || res.Signature != SigValid || res.SignerFingerprint != bobFpr {
			t.Fatalf("Decrypted=%v (%v) Signature=%s (%v)", res.Decrypted, res.DecryptErr, res.Signature, res.SignatureErr)
		}
		if string(bodyOf(t, res.Message)) != "inline secret from gpg\r\n" {
			t.Errorf("body %q", bodyOf(t, res.Message))
		}
	})

	t.Run("gpg cleartext signed", func(t *testing.T) {
		signed := g.mustRun([]byte("Signed inline by GnuPG.\n- a dash line\n"), "--clearsign", "-u", gpgBob)
		msg := crlf("From: " + gpgBob + "\nSubject: cs\nContent-Type: text/plain\n\n" + string(signed))
		res, _ := Process(msg, own, senders, time.Now())
		if res.Signature != SigValid || res.SignerFingerprint != bobFpr || res.SignerAddress != gpgBob {
			t.Fatalf("Signature=%s (%v) fpr=%s addr=%s", res.Signature, res.SignatureErr, res.SignerFingerprint, res.SignerAddress)
		}
		if !bytes.Equal(res.Message, msg) {
			t.Error("message changed")
		}
	})

	t.Run("gpg detached multipart/signed", func(t *testing.T) {
		partLF := "Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n\nSigned by GnuPG as PGP/MIME.\n"
		sig := g.mustRun(crlf(partLF), "--armor", "--detach-sign", "-u", gpgBob)
		msg := crlf("From: " + gpgBob + "\nSubject: detached\nMIME-Version: 1.0\nContent-Type: multipart/signed; micalg=pgp-sha512; protocol=\"application/pgp-signature\"; boundary=\"sig\"\n\n--sig\n" +
			partLF + "\n--sig\nContent-Type: application/pgp-signature\n\n" + string(sig) + "\n--sig--\n")
		res, _ := Process(msg, own, senders, time.Now())
		if res.Signature != SigValid || res.SignerFingerprint != bobFpr {
			t.Fatalf("Signature=%s (%v)", res.Signature, res.SignatureErr)
		}
		// Also when the mail store converted it to LF line breaks.
		lf := bytes.ReplaceAll(msg, []byte("\r\n"), []byte("\n"))
		if res, _ := Process(lf, own, senders, time.Now()); res.Signature != SigValid {
			t.Errorf("LF: Signature=%s (%v)", res.Signature, res.SignatureErr)
		}
	})

	for _, hidden := range []bool{false, true} {
		name := "gpg decrypts EncryptSign"
		if hidden {
			name += " with hidden recipients"
		}
		t.Run(name, func(t *testing.T) {
			enc, err := EncryptSign(crlf(sampleMsg), list(f.bobPub, publicOnly(t, f.alice)), f.alice, &Options{HiddenRecipients: hidden})
			if err != nil {
				t.Fatal(err)
			}
			plain, status, err := g.run(armoredPart(t, enc), "--decrypt")
			if err != nil {
				t.Fatalf("gpg --decrypt: %v\n%s", err, status)
			}
			statusHas(t, status, "DECRYPTION_OKAY", "GOODSIG", "VALIDSIG "+aliceFpr)
			if !bytes.Contains(plain, []byte("Subject: Quarterly numbers\r\n")) || !bytes.Contains(plain, []byte(`protected-headers="v1"; hp="cipher"`)) || !bytes.Contains(plain, []byte("Hello Bob,")) {
				t.Errorf("plaintext:\n%s", plain)
			}
			if hidden && !bytes.Contains(status, []byte("ENC_TO 0000000000000000")) {
				t.Errorf("gpg did not see a wildcard recipient:\n%s", status)
			}
		})
	}

	t.Run("gpg verifies Sign", func(t *testing.T) {
		msg := []byte("From: alice@example.org\nTo: " + gpgBob + "\nSubject: signed for gpg\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nFrom Köln, with trailing space \nbye\n")
		signed, err := Sign(msg, f.alice, nil)
		if err != nil {
			t.Fatal(err)
		}
		e, _ := parseEntity(signed)
		_, params := mediaType(e.header)
		mp, ok := splitMultipart(e.body, params["boundary"])
		if !ok || len(mp.parts) != 2 {
			t.Fatal("bad multipart/signed")
		}
		dir := t.TempDir()
		data := filepath.Join(dir, "part")
		sigf := filepath.Join(dir, "part.asc")
		// The signed data: the first part as transmitted, in canonical CRLF form.
		os.WriteFile(data, toCRLF(e.body[mp.parts[0].start:mp.parts[0].end]), 0o600)
		se, _ := parseEntity(e.body[mp.parts[1].start:mp.parts[1].end])
		os.WriteFile(sigf, se.body, 0o600)
		_, status, err := g.run(nil, "--verify", sigf, data)
		if err != nil {
			t.Fatalf("gpg --verify: %v\n%s", err, status)
		}
		statusHas(t, status, "GOODSIG", "VALIDSIG "+aliceFpr)
		// And gpg rejects a modified part.
		os.WriteFile(data, bytes.Replace(toCRLF(e.body[mp.parts[0].start:mp.parts[0].end]), []byte("bye"), []byte("bye!"), 1), 0o600)
		if _, status, _ := g.run(nil, "--verify", sigf, data); !bytes.Contains(status, []byte("BADSIG")) {
			t.Errorf("tampered data not rejected:\n%s", status)
		}
	})
}
