package controlserver

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/bitmask-go/bitmask/internal/controlapi"
)

// The control token: 32 random bytes as 64 lowercase hex characters and
// a newline, in DATA/control.token (controlapi.TokenFile), mode 0600.
// Whoever can read the file can drive the daemon, secret key export
// included; clients read it with controlapi.ReadToken.

// LoadOrCreateToken returns the control token kept in dataDir, creating
// the file (exclusively, mode 0600) on first use. A kept token shorter
// than 32 characters is refused.
func LoadOrCreateToken(dataDir string) (string, error) {
	path := controlapi.TokenFile(dataDir)
	b, err := os.ReadFile(path)
	if err == nil {
		tok := strings.TrimSpace(string(b))
		if len(tok) < 32 {
			return "", fmt.Errorf("control token in %s is too short", path)
		}
		return tok, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading the control token: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("making the control token: %w", err)
	}
	tok := hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("creating the control token: %w", err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("writing the control token: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("writing the control token: %w", err)
	}
	return tok, nil
}

// tokenEqual compares a request's token with the daemon's in constant
// time.
func tokenEqual(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
