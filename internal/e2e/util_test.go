package e2e

import (
	"io"
	"os"
	"testing"
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
