package httpapi

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
)

// Open prepares the API of the provider kept in dataDir: the CA and a
// server certificate for the domain and the API host, the secret behind
// the answers for unknown logins (login-fake.key), and the storage file
// (leapd.db). wrap, if not nil, stands something in front of the storage
// (a test's hostile or failing store); the server runs over what it
// returns. The caller closes the returned storage after the server
// stopped. provider.Start calls Open; so can a test that needs only the
// API.
func Open(dataDir string, cfg Config, wrap func(storage.Store) storage.Store) (*Server, storage.Store, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("data dir: %w", err)
	}
	u, err := url.Parse(cfg.APIURL)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" {
		return nil, nil, fmt.Errorf("API URL %q must be https://HOST[:PORT]", cfg.APIURL)
	}
	hosts := []string{cfg.Domain}
	for _, h := range []string{u.Hostname(), "localhost", "127.0.0.1", "::1"} {
		if h != cfg.Domain {
			hosts = append(hosts, h)
		}
	}
	tlsFiles, err := LoadOrCreateTLS(dataDir, hosts)
	if err != nil {
		return nil, nil, fmt.Errorf("CA and certificate: %w", err)
	}
	if cfg.FakeSecret == nil {
		if cfg.FakeSecret, err = loadOrCreateSecret(filepath.Join(dataDir, "login-fake.key")); err != nil {
			return nil, nil, fmt.Errorf("unknown-login secret: %w", err)
		}
	}
	st, err := storage.Open(context.Background(), dataDir, cfg.StoreURL, cfg.BlobsURL)
	if err != nil {
		return nil, nil, err
	}
	base := st
	if wrap != nil {
		st = wrap(st)
	}
	srv, err := New(cfg, st, tlsFiles)
	if err != nil {
		base.Close()
		return nil, nil, err
	}
	return srv, st, nil
}

// TLSFiles are the provider's CA and certificate.
func (s *Server) TLSFiles() *TLSFiles { return s.tls }

// loadOrCreateSecret reads a 32-byte secret from path, making it (0600)
// on first use.
func loadOrCreateSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(b) == 32 {
		return b, nil
	}
	if err == nil {
		return nil, fmt.Errorf("%s: not a 32-byte secret", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	b = make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, os.WriteFile(path, b, 0o600)
}
