package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/contactkeys"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
)

// gnupg is a GnuPG home with one key of its own.
type gnupg struct {
	t    *testing.T
	bin  string
	home string
}

func newGnuPG(t *testing.T, uid string) *gnupg {
	bin, err := exec.LookPath("gpg")
	if err != nil {
		t.Skip("gpg is not installed (.ci/run installs it)")
	}
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = exec.Command("gpgconf", "--homedir", home, "--kill", "all").Run()
		os.RemoveAll(home)
	})
	g := &gnupg{t: t, bin: bin, home: home}
	g.run(nil, "--passphrase", "", "--pinentry-mode", "loopback", "--quick-gen-key", uid, "future-default", "default", "1y")
	return g
}

func (g *gnupg) run(stdin []byte, args ...string) []byte {
	g.t.Helper()
	cmd := exec.Command(g.bin, append([]string{"--homedir", g.home, "--batch", "--yes", "--trust-model", "always", "--status-fd", "2"}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		g.t.Fatalf("gpg %v: %v\n%s", args, err, errb.String())
	}
	return append(out.Bytes(), errb.Bytes()...)
}

func (g *gnupg) output(stdin []byte, args ...string) (stdout, status []byte) {
	g.t.Helper()
	cmd := exec.Command(g.bin, append([]string{"--homedir", g.home, "--batch", "--yes", "--trust-model", "always", "--status-fd", "2"}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		g.t.Fatalf("gpg %v: %v\n%s", args, err, errb.String())
	}
	return out.Bytes(), errb.Bytes()
}

// TestGnuPGInterop: a message GnuPG encrypted and signed for A is
// decrypted and verified by A's daemon; a message A sends to a GnuPG
// user's key is decrypted and verified by gpg.
func TestGnuPGInterop(t *testing.T) {
	p, o := outsideProvider(t)
	a := signup(t, p, "alice")
	const gina = "gina@outside.test"
	g := newGnuPG(t, "Gina <"+gina+">")
	ginaPub, _ := g.output(nil, "--armor", "--export", gina)
	if _, err := a.acct.Contacts.Learn(gina, string(ginaPub), contactkeys.KnownKey, "test"); err != nil {
		t.Fatal(err)
	}
	ak, _ := a.acct.CurrentKey()
	alicePub, _ := pgpkey.ArmorPublic(ak)
	g.run([]byte(alicePub), "--import")

	// GnuPG to A: PGP/MIME (RFC 3156) around gpg's encrypted and signed
	// message.
	inner := "Content-Type: text/plain; charset=utf-8\r\n\r\ngpg-marker-3f1a: hello from GnuPG\r\n"
	ct, _ := g.output([]byte(inner), "--armor", "--encrypt", "--sign", "--local-user", gina, "--recipient", a.acct.Address)
	msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: from gnupg\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=\"gpgb\"\r\n\r\n"+
		"--gpgb\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n"+
		"--gpgb\r\nContent-Type: application/octet-stream\r\n\r\n%s\r\n--gpgb--\r\n", gina, a.acct.Address, ct)
	deliver(t, p, gina, a.acct.Address, []byte(msg))
	waitMessages(t, a, "INBOX", 1)
	got := fetchAll(t, a.imap(t, nil), "INBOX")[0]
	if !strings.Contains(got, "gpg-marker-3f1a") || header(got, "X-Leap-Encryption") != "decrypted" {
		t.Fatalf("not decrypted:\n%s", got)
	}
	if sig := header(got, "X-Leap-Signature"); sig != fmt.Sprintf("valid; signer=%q; level=known_key; pubkey=%q", gina, keyFingerprint(t, ginaPub)) {
		t.Fatalf("X-Leap-Signature %q", sig)
	}

	// A to GnuPG.
	out := plainMessage(a.acct.Address, gina, "to gnupg", "alice-marker-77c0: hello GnuPG")
	if err := a.submit(t, a.acct.Address, []string{gina}, out); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, "delivery to gina", func() bool { return len(o.received()) == 1 })
	copy := o.received()[0].data
	i := bytes.Index(copy, []byte("-----BEGIN PGP MESSAGE-----"))
	j := bytes.Index(copy, []byte("-----END PGP MESSAGE-----"))
	if i < 0 || j < 0 || bytes.Contains(copy, []byte("alice-marker-77c0")) {
		t.Fatalf("not an encrypted copy:\n%s", copy)
	}
	plain, status := g.output(copy[i:j+len("-----END PGP MESSAGE-----")], "--decrypt")
	if !bytes.Contains(plain, []byte("alice-marker-77c0")) {
		t.Fatalf("gpg decrypted something else:\n%s", plain)
	}
	if !bytes.Contains(status, []byte("[GNUPG:] DECRYPTION_OKAY")) || !bytes.Contains(status, []byte("[GNUPG:] GOODSIG")) ||
		!bytes.Contains(status, []byte("VALIDSIG "+pgpkey.Fingerprint(ak))) {
		t.Fatalf("gpg status:\n%s", status)
	}
}

// keyFingerprint is the fingerprint of an armored public key.
func keyFingerprint(t *testing.T, armored []byte) string {
	t.Helper()
	e, err := pgpkey.ReadArmored(string(armored))
	if err != nil {
		t.Fatal(err)
	}
	return pgpkey.Fingerprint(e)
}
