package httpapi

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
)

// Instance is a provider with its storage and TLS material, as leapd runs
// it (and as tests and the embedded demo start it).
type Instance struct {
	*Server
	Store storage.Store
}

// Open prepares the provider in dataDir: the storage file, the CA and a
// server certificate for the domain and the API host.
func Open(dataDir string, cfg Config) (*Instance, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("provider: data dir: %w", err)
	}
	u, err := url.Parse(cfg.APIURL)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" {
		return nil, fmt.Errorf("provider: API URL %q must be https://HOST[:PORT]", cfg.APIURL)
	}
	hosts := []string{cfg.Domain}
	for _, h := range []string{u.Hostname(), "localhost", "127.0.0.1", "::1"} {
		if h != cfg.Domain {
			hosts = append(hosts, h)
		}
	}
	tlsFiles, err := LoadOrCreateTLS(dataDir, hosts)
	if err != nil {
		return nil, err
	}
	if cfg.FakeSecret == nil {
		if cfg.FakeSecret, err = loadOrCreateSecret(filepath.Join(dataDir, "login-fake.key")); err != nil {
			return nil, fmt.Errorf("provider: %w", err)
		}
	}
	st, err := storage.OpenBolt(filepath.Join(dataDir, "leapd.db"))
	if err != nil {
		return nil, err
	}
	srv, err := New(cfg, st, tlsFiles)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &Instance{Server: srv, Store: st}, nil
}

// Run serves on ln until ctx ends, then closes the storage.
func (in *Instance) Run(ctx context.Context, ln net.Listener) error {
	defer in.Store.Close()
	return in.Serve(ctx, ln)
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
