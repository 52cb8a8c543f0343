package provider_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider"
	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/provider/mx"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/providerapi"
)

func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func config(dir string) provider.Config {
	return provider.Config{
		DataDir: dir,
		Logger:  quiet(),
		API:     httpapi.Config{Domain: "example.test", Name: "Test"},
		MX:      mx.Config{Hostname: "mx.example.test"},
		Listen: provider.Addrs{
			API: "127.0.0.1:0", MX: "127.0.0.1:0",
			Submission: "127.0.0.1:0", Submissions: "127.0.0.1:0",
		},
	}
}

// greeting reads the SMTP greeting at addr and the EHLO answer's
// extensions.
func greeting(t *testing.T, addr string) (string, []string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc := textproto.NewConn(c)
	_, hello, err := tc.ReadResponse(220)
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.PrintfLine("EHLO client.test"); err != nil {
		t.Fatal(err)
	}
	_, ext, err := tc.ReadResponse(250)
	if err != nil {
		t.Fatal(err)
	}
	return hello, strings.Split(ext, "\n")
}

// TestStartServesEverything: one Start serves provider.json over the
// pinned CA, announces the STARTTLS submission listener, runs the MX
// with STARTTLS and submission on both listeners; Close stops it all and
// closes the storage, so a second Start on the same directory works.
func TestStartServesEverything(t *testing.T) {
	dir := t.TempDir()
	p, err := provider.Start(context.Background(), config(dir))
	if err != nil {
		t.Fatal(err)
	}
	pj := p.ProviderJSON()
	if pj.Domain != "example.test" || pj.APIURI != "https://"+p.Addrs.API {
		t.Fatalf("provider.json: %+v, API at %s", pj, p.Addrs.API)
	}
	if pj.Submission != p.Addrs.Submission {
		t.Fatalf("announced submission %q, listening at %q", pj.Submission, p.Addrs.Submission)
	}

	roots := x509.NewCertPool()
	roots.AddCert(p.TLSFiles().CACert)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}, Timeout: 5 * time.Second}
	resp, err := hc.Get(pj.APIURI + "/provider.json")
	if err != nil {
		t.Fatal(err)
	}
	var got providerapi.ProviderJSON
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || got.CACertFingerprint != pj.CACertFingerprint {
		t.Fatalf("served provider.json: %v %+v", err, got)
	}

	hello, ext := greeting(t, p.Addrs.MX)
	if !strings.Contains(hello, "mx.example.test") || !contains(ext, "STARTTLS") {
		t.Fatalf("MX: %q %q", hello, ext)
	}
	if _, ext := greeting(t, p.Addrs.Submission); !contains(ext, "STARTTLS") {
		t.Fatalf("submission: %q", ext)
	}
	c, err := tls.Dial("tcp", p.Addrs.Submissions, &tls.Config{RootCAs: roots, ServerName: "example.test"})
	if err != nil {
		t.Fatalf("implicit TLS submission: %v", err)
	}
	c.Close()
	if _, _, err := p.Submission.DKIMRecord(); err != nil {
		t.Fatal(err)
	}

	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	if _, err := net.DialTimeout("tcp", p.Addrs.MX, time.Second); err == nil {
		t.Fatal("the MX still listens after Close")
	}

	again, err := provider.Start(context.Background(), config(dir))
	if err != nil {
		t.Fatalf("restart on the same data directory: %v", err)
	}
	if again.ProviderJSON().CACertFingerprint != pj.CACertFingerprint {
		t.Fatal("the restart made a new CA")
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

// TestStartEndsWithContext: the provider stops when Start's context
// ends.
func TestStartEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p, err := provider.Start(ctx, config(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the provider still runs after its context ended")
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestStartListenersAndOptions: listeners the caller opened are used,
// an LMTP socket is made mode 0660, the MX can be plain, submission can
// be left out, and WrapStore's store is the one every part uses.
func TestStartListenersAndOptions(t *testing.T) {
	dir := t.TempDir()
	api, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "lmtp.sock")
	type wrapped struct{ storage.Store }
	cfg := provider.Config{
		DataDir:      dir,
		Logger:       quiet(),
		API:          httpapi.Config{Domain: "example.test"},
		PlainMX:      true,
		NoSubmission: true,
		WrapStore:    func(s storage.Store) storage.Store { return wrapped{s} },
		Listen:       provider.Addrs{MX: "127.0.0.1:0", LMTP: sock},
		Listeners:    provider.Listeners{API: api},
	}
	p, err := provider.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Addrs.API != api.Addr().String() || p.Addrs.LMTP != sock || p.Addrs.Submission != "" {
		t.Fatalf("addresses: %+v", p.Addrs)
	}
	if p.Submission != nil || p.ProviderJSON().Submission != "" {
		t.Fatal("submission runs though it was left out")
	}
	if _, ok := p.Store.(wrapped); !ok {
		t.Fatalf("store is %T, not the wrapped one", p.Store)
	}
	if _, ext := greeting(t, p.Addrs.MX); contains(ext, "STARTTLS") {
		t.Fatal("a plain MX offers STARTTLS")
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("LMTP socket: %v %v", err, fi)
	}
}

// TestStartRefuses: what Start refuses, and that it closes the
// listeners it was given when it does.
func TestStartRefuses(t *testing.T) {
	for name, mutate := range map[string]func(*provider.Config){
		"no data directory": func(c *provider.Config) { c.DataDir = "" },
		"no API":            func(c *provider.Config) { c.Listen.API = "" },
		"submission off but listening": func(c *provider.Config) {
			c.NoSubmission = true
			c.Listen.Submission = "127.0.0.1:0"
		},
		"bad API URL": func(c *provider.Config) { c.API.APIURL = "http://example.test" },
	} {
		t.Run(name, func(t *testing.T) {
			mx, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			cfg := config(t.TempDir())
			cfg.Listen.MX = ""
			cfg.Listeners.MX = mx
			mutate(&cfg)
			if p, err := provider.Start(context.Background(), cfg); err == nil {
				p.Close()
				t.Fatal("started")
			}
			if _, err := mx.Accept(); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("the given listener was not closed: %v", err)
			}
		})
	}
}
