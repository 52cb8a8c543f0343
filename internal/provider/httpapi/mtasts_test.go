package httpapi_test

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// parseSTS reads an RFC 8461 §3.2 policy: "key: value" lines ending in
// CRLF (LF tolerated), the version first.
func parseSTS(t *testing.T, text string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\r\n"), "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(v) != v[1:] || v[0] != ' ' {
			t.Fatalf("line %q", line)
		}
		if i == 0 && (k != "version" || v != " STSv1") {
			t.Fatalf("first line %q", line)
		}
		out[k] = append(out[k], v[1:])
	}
	return out
}

// leapd serves the configured policy at mta-sts.DOMAIN only; what it
// serves is what Text (and so `leapd dns`'s id) is made from.
func TestMTASTSPolicyServed(t *testing.T) {
	pol := httpapi.MTASTSPolicy{Mode: "testing", MX: []string{"MX1.Example.Test.", "*.mx.example.test"}, MaxAge: 24 * time.Hour}
	p := testenv.StartProvider(t, testenv.Options{Config: httpapi.Config{MTASTS: pol}})
	hc := thunderbirdClient(p.Addr)
	_, port, _ := net.SplitHostPort(p.Addr)
	get := func(host string) (int, string, string) {
		resp, err := hc.Get("https://" + host + ":" + port + "/.well-known/mta-sts.txt")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	code, ctype, body := get("mta-sts." + testenv.Domain)
	if code != 200 || !strings.HasPrefix(ctype, "text/plain") {
		t.Fatalf("%d %s\n%s", code, ctype, body)
	}
	f := parseSTS(t, body)
	if got := f["mode"]; len(got) != 1 || got[0] != "testing" {
		t.Errorf("mode %q", got)
	}
	if got := f["mx"]; len(got) != 2 || got[0] != "mx1.example.test" || got[1] != "*.mx.example.test" {
		t.Errorf("mx %q", got)
	}
	if got := f["max_age"]; len(got) != 1 || got[0] != "86400" {
		t.Errorf("max_age %q", got)
	}
	text, id, err := pol.Text(testenv.Domain)
	if err != nil || string(text) != body || len(id) != 32 {
		t.Fatalf("Text: %q %q %v", text, id, err)
	}
	for _, host := range []string{testenv.Domain, "127.0.0.1", "mta-sts.other.test"} {
		if code, _, _ := get(host); code != 404 {
			t.Errorf("host %s: %d, want 404", host, code)
		}
	}
	// Another policy, another id; the default is enforce for the
	// domain, kept a week.
	def, id2, err := httpapi.MTASTSPolicy{}.Text("example.test")
	if err != nil || id2 == id {
		t.Fatalf("default policy: id %s (was %s), %v", id2, id, err)
	}
	if string(def) != "version: STSv1\r\nmode: enforce\r\nmx: example.test\r\nmax_age: 604800\r\n" {
		t.Errorf("default policy %q", def)
	}
}

// A bad mode, MX name or max_age is refused with an error naming it.
func TestMTASTSPolicyBad(t *testing.T) {
	for _, tc := range []struct {
		pol  httpapi.MTASTSPolicy
		want string
	}{
		{httpapi.MTASTSPolicy{Mode: "strict"}, "mode"},
		{httpapi.MTASTSPolicy{MX: []string{"mx.example.test\r\nmode: none"}}, "mx"},
		{httpapi.MTASTSPolicy{MX: []string{"localhost"}}, "mx"},
		{httpapi.MTASTSPolicy{MX: []string{"a..b"}}, "mx"},
		{httpapi.MTASTSPolicy{MaxAge: 2 * 366 * 24 * time.Hour}, "max_age"},
		{httpapi.MTASTSPolicy{MaxAge: 1500 * time.Millisecond}, "max_age"},
	} {
		if _, _, err := tc.pol.Text("example.test"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v", tc.pol, err)
		}
	}
}
