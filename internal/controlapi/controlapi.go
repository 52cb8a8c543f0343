// Package controlapi is bitmaskd's control API as its clients see it: the
// JSON bodies of every request and answer, the Go client (what
// bitmaskctl uses), and where the control token is kept. It depends on
// the standard library only, so a client links nothing of the daemon.
//
// The API is JSON over HTTP on a loopback address (127.0.0.1:7070 by
// default). Every request carries "Authorization: Bearer TOKEN", TOKEN
// being the content of DATA/control.token (mode 0600), which bitmaskd
// makes on its first start. docs/control-api.md lists the endpoints.
package controlapi

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DefaultAddr is where bitmaskd serves the control API unless told
// otherwise.
const DefaultAddr = "127.0.0.1:7070"

// TokenFile is the control token's path in a data directory.
func TokenFile(dataDir string) string { return filepath.Join(dataDir, "control.token") }

// ReadToken reads the control token bitmaskd keeps in dataDir.
func ReadToken(dataDir string) (string, error) {
	b, err := os.ReadFile(TokenFile(dataDir))
	if err != nil {
		return "", fmt.Errorf("reading the control token (is bitmaskd running with --data %s?): %w", dataDir, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// DefaultDataDir is bitmaskd's data directory unless told otherwise:
// $XDG_DATA_HOME/bitmask, or ~/.local/share/bitmask. Its clients look
// for the control token there.
func DefaultDataDir() string {
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "bitmask")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "bitmask")
	}
	return "bitmask-data"
}
