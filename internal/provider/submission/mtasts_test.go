package submission

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/foxcpp/go-mockdns"
)

func TestParseSTSPolicy(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		mode       stsMode
		mx         []string
		maxAge     time.Duration
		err        bool
	}{
		{name: "enforce CRLF", body: "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n",
			mode: stsEnforce, mx: []string{"mx1.example.com", "*.example.net"}, maxAge: 7 * 24 * time.Hour},
		{name: "testing LF, unknown key", body: "version: STSv1\nmode: testing\nmx: MX.Example.com.\nmax_age: 86400\nfoo: bar\n",
			mode: stsTesting, mx: []string{"mx.example.com"}, maxAge: 24 * time.Hour},
		{name: "none without mx", body: "version: STSv1\nmode: none\nmax_age: 60", mode: stsNone, maxAge: time.Minute},
		{name: "max_age capped", body: "version: STSv1\nmode: none\nmax_age: 9999999999", mode: stsNone, maxAge: stsMaxAge * time.Second},
		{name: "no version", body: "mode: enforce\nmx: a.example\nmax_age: 1", err: true},
		{name: "wrong version", body: "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1", err: true},
		{name: "bad mode", body: "version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1", err: true},
		{name: "no max_age", body: "version: STSv1\nmode: enforce\nmx: a.example", err: true},
		{name: "bad max_age", body: "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1", err: true},
		{name: "enforce without mx", body: "version: STSv1\nmode: enforce\nmax_age: 1", err: true},
		{name: "garbage", body: "<html>not a policy</html>", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parseSTSPolicy(tc.body)
			if tc.err {
				if err == nil {
					t.Fatalf("parsed %+v", p)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.mode != tc.mode || p.maxAge != tc.maxAge || strings.Join(p.mx, ",") != strings.Join(tc.mx, ",") {
				t.Fatalf("got %+v", p)
			}
		})
	}
}

func TestMatchMX(t *testing.T) {
	patterns := []string{"mail.example.com", "*.example.net"}
	for host, want := range map[string]bool{
		"mail.example.com":   true,
		"MAIL.example.com.":  true,
		"mx.example.com":     false,
		"mx1.example.net":    true,
		"a.b.example.net":    false,
		"example.net":        false,
		".example.net":       false,
		"mx1.example.net.nz": false,
	} {
		if got := matchMX(patterns, host); got != want {
			t.Errorf("matchMX(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestMTASTSCache: a policy is fetched once and then served from the
// cache while the TXT id is unchanged, kept when the TXT record or the
// fetch fails, and fetched again when the id changes or it expires.
func TestMTASTSCache(t *testing.T) {
	var fetches atomic.Int32
	policy := atomic.Value{}
	policy.Store("version: STSv1\nmode: enforce\nmx: mx.remote.test\nmax_age: 3600\n")
	fail := atomic.Bool{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, policy.Load().(string))
	}))
	defer srv.Close()
	client := srv.Client()
	client.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, srv.Listener.Addr().String())
	}
	client.Transport.(*http.Transport).TLSClientConfig.InsecureSkipVerify = true // the test server's own certificate

	zones := map[string]mockdns.Zone{"_mta-sts.remote.test.": {TXT: []string{"v=STSv1; id=1"}}}
	res := &switchResolver{}
	res.r.Store(&mockdns.Resolver{Zones: zones})
	now := time.Now()
	m := newMTASTS(res, client, nil, slog.New(slog.DiscardHandler))
	m.now = func() time.Time { return now }
	ctx := context.Background()
	get := func() *stsPolicy { return m.policy(ctx, "remote.test") }

	if p := get(); p == nil || p.mode != stsEnforce {
		t.Fatalf("policy %+v", p)
	}
	get()
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches with an unchanged id, want 1", n)
	}
	// The TXT record vanishes (an attacker blocks it): the cached
	// policy still applies.
	res.r.Store(&mockdns.Resolver{Zones: map[string]mockdns.Zone{}})
	if p := get(); p == nil || p.mode != stsEnforce {
		t.Fatal("cached policy dropped when the TXT record went away")
	}
	// A new id with a failing fetch: the cached policy applies.
	res.r.Store(&mockdns.Resolver{Zones: map[string]mockdns.Zone{"_mta-sts.remote.test.": {TXT: []string{"v=STSv1; id=2"}}}})
	fail.Store(true)
	if p := get(); p == nil || p.mode != stsEnforce {
		t.Fatal("cached policy dropped when a refetch failed")
	}
	// The fetch works again: the new policy replaces the old.
	fail.Store(false)
	policy.Store("version: STSv1\nmode: none\nmax_age: 3600\n")
	if p := get(); p == nil || p.mode != stsNone {
		t.Fatalf("new policy not taken: %+v", p)
	}
	// Expired, the TXT record gone: no policy.
	res.r.Store(&mockdns.Resolver{Zones: map[string]mockdns.Zone{}})
	now = now.Add(2 * time.Hour)
	if p := get(); p != nil {
		t.Fatalf("expired policy still applies: %+v", p)
	}
	// Redirects are not followed.
	if err := m.client.CheckRedirect(nil, nil); err == nil {
		t.Fatal("the policy client follows redirects")
	}
}

// switchResolver answers from a mockdns.Resolver the test may swap.
type switchResolver struct {
	r atomic.Pointer[mockdns.Resolver]
}

func (s *switchResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	return s.r.Load().LookupMX(ctx, name)
}

func (s *switchResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	return s.r.Load().LookupIPAddr(ctx, host)
}

func (s *switchResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return s.r.Load().LookupTXT(ctx, name)
}
