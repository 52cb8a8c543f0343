package submission

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/foxcpp/go-mockdns"
)

// stsTestServer serves whatever policy holds, counting fetches.
type stsTestServer struct {
	fetches atomic.Int32
	policy  atomic.Value
	client  *http.Client
}

func newSTSTestServer(t *testing.T, policy string) *stsTestServer {
	t.Helper()
	s := &stsTestServer{}
	s.policy.Store(policy)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, s.policy.Load().(string))
	}))
	t.Cleanup(srv.Close)
	s.client = srv.Client()
	s.client.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, srv.Listener.Addr().String())
	}
	s.client.Transport.(*http.Transport).TLSClientConfig.InsecureSkipVerify = true // the test server's own certificate
	return s
}

type reported struct {
	mu   sync.Mutex
	list []string
}

func (r *reported) add(_ context.Context, domain, result, _ string) {
	r.mu.Lock()
	r.list = append(r.list, domain+" "+result)
	r.mu.Unlock()
}

func (r *reported) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.list...)
}

func txt(id string) *mockdns.Resolver {
	return &mockdns.Resolver{Zones: map[string]mockdns.Zone{"_mta-sts.remote.test.": {TXT: []string{"v=STSv1; id=" + id}}}}
}

const goodPolicy = "version: STSv1\nmode: enforce\nmx: mx.remote.test\nmax_age: 3600\n"

// TestMTASTSBadPolicyKeepsCache: a new policy over 64 KiB, or one that
// does not parse, is refused with a clear error (counted for TLS-RPT as
// sts-policy-invalid) and the cached policy stays, in memory and on
// disk; a new process reads it back without any lookup.
func TestMTASTSBadPolicyKeepsCache(t *testing.T) {
	srv := newSTSTestServer(t, goodPolicy)
	res := &switchResolver{}
	res.r.Store(txt("1"))
	path := filepath.Join(t.TempDir(), stsCacheFile)
	rep := &reported{}
	m := newMTASTS(res, srv.client, nil, slog.New(slog.DiscardHandler))
	m.path, m.report = path, rep.add
	ctx := context.Background()
	if p := m.policy(ctx, "remote.test"); p == nil || p.mode != stsEnforce {
		t.Fatalf("policy %+v", p)
	}
	for i, bad := range []string{
		goodPolicy + "x: " + strings.Repeat("y", 64<<10) + "\n",
		"version: STSv1\nmode: lenient\nmx: mx.remote.test\nmax_age: 3600\n",
		"<html>Moved</html>",
	} {
		srv.policy.Store(bad)
		res.r.Store(txt(string(rune('2' + i))))
		if p := m.policy(ctx, "remote.test"); p == nil || p.mode != stsEnforce || p.mx[0] != "mx.remote.test" {
			t.Fatalf("bad policy %d replaced the cached one: %+v", i, p)
		}
	}
	if got := rep.get(); len(got) != 3 || got[0] != "remote.test sts-policy-invalid" {
		t.Errorf("reported %q, want three sts-policy-invalid", got)
	}

	// A new process, no DNS and no policy server: the file still has it.
	m2 := newMTASTS(&mockdns.Resolver{}, &http.Client{}, nil, slog.New(slog.DiscardHandler))
	m2.path = path
	if err := m2.load(); err != nil {
		t.Fatal(err)
	}
	if p := m2.policy(ctx, "remote.test"); p == nil || p.mode != stsEnforce {
		t.Fatalf("policy after reload: %+v", p)
	}

	// An expired entry is not loaded.
	m3 := newMTASTS(&mockdns.Resolver{}, &http.Client{}, nil, slog.New(slog.DiscardHandler))
	m3.path = path
	m3.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if err := m3.load(); err != nil {
		t.Fatal(err)
	}
	if p := m3.policy(ctx, "remote.test"); p != nil {
		t.Fatalf("expired policy loaded: %+v", p)
	}
}

// TestMTASTSRefresh: with an unchanged id the policy is fetched again
// once half its max_age has passed, at use and by refreshStale, and the
// new fetch extends its life.
func TestMTASTSRefresh(t *testing.T) {
	srv := newSTSTestServer(t, goodPolicy)
	res := &switchResolver{}
	res.r.Store(txt("1"))
	now := time.Now()
	m := newMTASTS(res, srv.client, nil, slog.New(slog.DiscardHandler))
	m.path = filepath.Join(t.TempDir(), stsCacheFile)
	m.now = func() time.Time { return now }
	ctx := context.Background()
	m.policy(ctx, "remote.test")
	now = now.Add(29 * time.Minute)
	m.policy(ctx, "remote.test")
	m.refreshStale(ctx)
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches before half of max_age, want 1", n)
	}
	now = now.Add(2 * time.Minute) // 31 minutes: past half an hour
	m.policy(ctx, "remote.test")
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches past half of max_age at use, want 2", n)
	}
	now = now.Add(31 * time.Minute)
	m.refreshStale(ctx)
	if n := srv.fetches.Load(); n != 3 {
		t.Fatalf("%d fetches after the background refresh, want 3", n)
	}
	// 93 minutes after the first fetch the policy is still current
	// (fetched again at 62): without the refreshes it would be gone.
	now = now.Add(31 * time.Minute)
	res.r.Store(&mockdns.Resolver{})
	if p := m.policy(ctx, "remote.test"); p == nil {
		t.Fatal("a refreshed policy expired")
	}
}

// TestSTSCacheUnreadable: a cache file that does not parse is set aside
// (kept for the admin) and the relay starts with an empty cache.
func TestSTSCacheUnreadable(t *testing.T) {
	path := filepath.Join(t.TempDir(), stsCacheFile)
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := newMTASTS(&mockdns.Resolver{}, &http.Client{}, nil, slog.New(slog.DiscardHandler))
	m.path = path
	if err := m.load(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path + ".bad"); err != nil || string(b) != "{not json" {
		t.Fatalf("not set aside: %q %v", b, err)
	}
	if len(m.cache) != 0 {
		t.Fatalf("cache %v", m.cache)
	}
}
