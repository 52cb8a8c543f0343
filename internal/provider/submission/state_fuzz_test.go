package submission

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/foxcpp/go-mockdns"
)

// FuzzSTSCacheFile feeds arbitrary bytes to the reading of the MTA-STS
// cache file (mta-sts.json, which a crash or a disk error may leave
// damaged). Nothing may panic; loading never fails for bad content (the
// file is set aside instead); every policy it keeps parses and has not
// expired.
func FuzzSTSCacheFile(f *testing.F) {
	f.Add([]byte(`{"version":1,"policies":[{"domain":"remote.test","id":"1","policy":"version: STSv1\nmode: enforce\nmx: mx.remote.test\nmax_age: 86400\n","fetched":"2026-01-01T00:00:00Z","expires":"2099-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), stsCacheFile)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		m := newMTASTS(&mockdns.Resolver{}, &http.Client{}, nil, slog.New(slog.DiscardHandler))
		m.path = path
		if err := m.load(); err != nil {
			t.Fatalf("load failed on bad content instead of setting it aside: %v", err)
		}
		now := m.now()
		for d, c := range m.cache {
			if d == "" || c.policy == nil || !now.Before(c.expires) {
				t.Fatalf("kept %q: %+v", d, c)
			}
			if _, err := parseSTSPolicy(c.body); err != nil {
				t.Fatalf("kept a policy that does not parse: %v", err)
			}
		}
	})
}

// FuzzTLSRPTState feeds arbitrary bytes to the reading of the saved TLS
// report counts (tlsrpt/current.json). Nothing may panic, and whatever
// is loaded must still make reports that marshal.
func FuzzTLSRPTState(f *testing.F) {
	f.Add([]byte(`{"start":"2026-01-01T00:00:00Z","domains":{"remote.test":{"tlsa":{"strings":["x"],"successes":3,"failures":1,"details":{"k":{"result":"validation-failure","mx":"mx.remote.test","count":1}}}}}}`))
	f.Add([]byte(`{"start":"2026-01-01T00:00:00Z","domains":{"a":{"b":null}}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "tlsrpt"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "tlsrpt", "current.json"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		r := newTLSReporter(dir, "mx.example.test", "postmaster@example.test", slog.New(slog.DiscardHandler))
		r.loadCurrent()
		r.success(rptSession{domain: "remote.test", mx: "mx.remote.test"})
		r.failure(context.Background(), rptSession{domain: "remote.test", mx: "mx.remote.test"}, "validation-failure", "", "x")
		if _, err := r.rollover(r.st.Start.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	})
}
