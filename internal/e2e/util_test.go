package e2e

import (
	"bytes"
	"io"
	"os"
	"testing"

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
