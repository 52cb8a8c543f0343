package e2e

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"mime"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/testenv"
)

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// debugWriter logs an IMAP conversation when E2E_DEBUG is set.
func debugWriter(t *testing.T) io.Writer {
	if os.Getenv("E2E_DEBUG") == "" {
		return nil
	}
	return tw{t}
}

type tw struct{ t *testing.T }

func (w tw) Write(p []byte) (int, error) { w.t.Logf("%s", p); return len(p), nil }

// waitIncomingDrained waits until login's incoming queue at the provider
// is empty: the account's devices have stored (and synced) everything
// the provider took for it.
func waitIncomingDrained(t *testing.T, p *testenv.Provider, login string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, login+"'s incoming queue to drain", func() bool {
		items, _, err := p.Store.ListIncoming(context.Background(), login, 1)
		return err == nil && len(items) == 0
	})
}

// dialMX opens an SMTP connection to the provider's MX.
func dialMX(t testing.TB, p *testenv.Provider) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(p.MXAddr)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Hello("sender.test"); err != nil {
		t.Fatal(err)
	}
	return c
}

// sendOn sends one message on an open SMTP connection.
func sendOn(t testing.TB, c *smtp.Client, from, to string, msg []byte) {
	t.Helper()
	if err := c.SendMail(from, []string{to}, bytes.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
}

type net_MX = net.MX

func newLocalListener() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

func splitPort(t *testing.T, addr string) (string, int) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return h, n
}

// gpgVerifySigned checks a PGP/MIME signed message with GnuPG: the first
// part, as transmitted with CRLF line ends, against the detached
// signature, with signer's public key imported into a fresh keyring.
func gpgVerifySigned(t *testing.T, msg []byte, signerPub string) {
	t.Helper()
	gpg, err := exec.LookPath("gpg")
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
	run := func(stdin []byte, args ...string) ([]byte, error) {
		cmd := exec.Command(gpg, append([]string{"--homedir", home, "--batch", "--status-fd", "1"}, args...)...)
		cmd.Stdin = bytes.NewReader(stdin)
		return cmd.CombinedOutput()
	}
	if out, err := run([]byte(signerPub), "--import"); err != nil {
		t.Fatalf("gpg --import: %v\n%s", err, out)
	}
	signed, sig := splitSigned(t, msg)
	dir := t.TempDir()
	os.WriteFile(dir+"/data", signed, 0o600)
	os.WriteFile(dir+"/sig.asc", sig, 0o600)
	out, err := run(nil, "--verify", dir+"/sig.asc", dir+"/data")
	if err != nil || !bytes.Contains(out, []byte("[GNUPG:] GOODSIG")) {
		t.Fatalf("gpg --verify: %v\n%s", err, out)
	}
}

// splitSigned returns the signed first part (CRLF) and the signature of
// a multipart/signed message.
func splitSigned(t *testing.T, msg []byte) (signed, sig []byte) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || params["boundary"] == "" {
		t.Fatalf("no boundary: %v", err)
	}
	body, _ := io.ReadAll(m.Body)
	body = bytes.ReplaceAll(bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
	delim := []byte("--" + params["boundary"])
	parts := bytes.Split(body, delim)
	if len(parts) < 4 {
		t.Fatalf("multipart/signed with %d parts", len(parts)-2)
	}
	first := bytes.TrimPrefix(parts[1], []byte("\r\n"))
	first = bytes.TrimSuffix(first, []byte("\r\n"))
	second := parts[2]
	_, sigBody, _ := bytes.Cut(second, []byte("\r\n\r\n"))
	return first, sigBody
}

// encryptTo makes a binary OpenPGP message for e (as the MX does).
func encryptTo(t *testing.T, e *openpgp.Entity, msg []byte) []byte {
	var buf bytes.Buffer
	w, err := openpgp.Encrypt(&buf, openpgp.EntityList{e}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(msg)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// scanDir fails if any file below dir holds one of the needles.
func scanDir(t *testing.T, dir string, needles ...string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		for _, s := range needles {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds %q in clear", path, s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 {
		t.Fatalf("only %d files below %s", n, dir)
	}
}
