package controlserver_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/bitmask-go/bitmask/internal/controlapi"
	"github.com/bitmask-go/bitmask/internal/controlserver"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

const token = "0123456789abcdef0123456789abcdef"

// serve is the control API of d on a loopback test server.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// do sends one request and returns the status and body.
func do(t *testing.T, method, url, host, auth, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// Before anything else the Host must be loopback, then the token must
// be right; the autoconfig paths need no token.
func TestHostAndTokenChecks(t *testing.T) {
	d := testenv.NewDaemon(t, testenv.DaemonOptions{})
	url := serve(t, controlserver.Handler(d, token))
	bearer := "Bearer " + token
	noAccounts := `{"accounts":[],"tls_sha256":"` + d.LocalServices().TLSFingerprint + `"}`
	for _, tc := range []struct {
		path, host, auth string
		status           int
		body             string
	}{
		{"/v1/status", "evil.example:7070", bearer, 403, `{"error":"bad Host"}`},
		{"/v1/status", "127.0.0.1.evil.example", bearer, 403, `{"error":"bad Host"}`},
		{"/mail/config-v1.1.xml?emailaddress=a@x.org", "evil.example", "", 403, `{"error":"bad Host"}`},
		{"/v1/status", "", "", 401, `{"error":"missing or wrong control token"}`},
		{"/v1/status", "", "Bearer " + token[1:], 401, `{"error":"missing or wrong control token"}`},
		{"/v1/status", "", token, 401, `{"error":"missing or wrong control token"}`},
		{"/v1/status", "", bearer, 200, noAccounts},
		{"/v1/status", "localhost:7070", bearer, 200, noAccounts},
		{"/v1/status", "[::1]:7070", bearer, 200, noAccounts},
		// A Host without a port passes when the host is loopback.
		{"/v1/status", "localhost", bearer, 200, noAccounts},
		{"/mail/config-v1.1.xml?emailaddress=a@x.org", "", "", 404, "no such account logged in"},
		{"/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=a@x.org", "", "", 404, "no such account logged in"},
		{"/v1/keys", "", bearer, 400, `{"error":"say which account (address=...)"}`},
		{"/v1/keys?address=A@x.org", "", bearer, 404, `{"error":"a@x.org is not logged in"}`},
	} {
		if status, body := do(t, "GET", url+tc.path, tc.host, tc.auth, ""); status != tc.status || body != tc.body {
			t.Errorf("GET %s (Host %q, %q): %d %s, want %d %s", tc.path, tc.host, tc.auth, status, body, tc.status, tc.body)
		}
	}
}

// A request body is one JSON value of at most 64 KiB.
func TestMalformedRequests(t *testing.T) {
	url := serve(t, controlserver.Handler(testenv.NewDaemon(t, testenv.DaemonOptions{}), token))
	for _, body := range []string{"", "{", `{"address":"a@x.org"} {}`, `{"address":"` + strings.Repeat("a", 64<<10) + `"}`} {
		status, got := do(t, "POST", url+"/v1/logout", "", "Bearer "+token, body)
		if status != 400 || !strings.HasPrefix(got, `{"error":"malformed request: `) {
			t.Errorf("body %.20q: %d %s", body, status, got)
		}
	}
	if status, got := do(t, "POST", url+"/v1/logout", "", "Bearer "+token, `{"address":"a@x.org"}`); status != 400 || got != `{"error":"a@x.org is not logged in"}` {
		t.Errorf("logout of nobody: %d %s", status, got)
	}
}

// A logged-in account's settings: JSON with the local token, the
// autoconfig XML without it, on the addresses the daemon was given.
func TestMailConfig(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	r := testenv.StartDaemon(t, testenv.DaemonOptions{})
	addr := "kim@" + testenv.Domain
	a := testenv.NewUser(t, r.Daemon, p, addr)
	url := serve(t, controlserver.Handler(r.Daemon, token))
	c := controlapi.NewClient(strings.TrimPrefix(url, "http://"), token)
	mc, err := c.MailConfig(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	want := controlapi.MailConfig{Address: addr, Username: addr, Password: a.LocalToken(), Security: "STARTTLS",
		TLSFingerprint: r.Daemon.LocalServices().TLSFingerprint}
	want.IMAPHost, want.IMAPPort = hostPort(t, r.IMAPAddr)
	want.SMTPHost, want.SMTPPort = hostPort(t, r.SMTPAddr)
	if mc != want {
		t.Fatalf("mail config %+v, want %+v", mc, want)
	}
	status, xml := do(t, "GET", url+"/mail/config-v1.1.xml?emailaddress="+strings.ToUpper(addr), "", "", "")
	if status != 200 || !strings.Contains(xml, "<clientConfig") || !strings.Contains(xml, "<username>"+addr+"</username>") || strings.Contains(xml, a.LocalToken()) {
		t.Fatalf("autoconfig: %d\n%s", status, xml)
	}
	if _, err := c.MailConfigFile(context.Background(), addr, "xml"); err == nil || err.Error() != "format is thunderbird, apple, text or json" {
		t.Fatalf("unknown format: %v", err)
	}
	st, err := c.Status(context.Background())
	if err != nil || len(st.Accounts) != 1 || st.Accounts[0].Address != addr || st.Accounts[0].State != "ready" || st.Accounts[0].Key == "" {
		t.Fatalf("status: %+v %v", st, err)
	}
}

func hostPort(t *testing.T, hp string) (string, int) {
	t.Helper()
	i := strings.LastIndexByte(hp, ':')
	var port int
	if err := json.Unmarshal([]byte(hp[i+1:]), &port); err != nil {
		t.Fatal(err)
	}
	return hp[:i], port
}

// The control token file: made once (0600, 64 hex characters and a
// newline), then reused; a short one is refused.
func TestLoadOrCreateToken(t *testing.T) {
	dir := t.TempDir()
	tok, err := controlserver.LoadOrCreateToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(controlapi.TokenFile(dir))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi.Mode(), err)
	}
	b, _ := os.ReadFile(controlapi.TokenFile(dir))
	if len(tok) != 64 || string(b) != tok+"\n" || strings.Trim(tok, "0123456789abcdef") != "" {
		t.Fatalf("token %q, file %q", tok, b)
	}
	if again, err := controlserver.LoadOrCreateToken(dir); err != nil || again != tok {
		t.Fatalf("second load: %q %v", again, err)
	}
	if read, err := controlapi.ReadToken(dir); err != nil || read != tok {
		t.Fatalf("client read: %q %v", read, err)
	}
	if err := os.WriteFile(controlapi.TokenFile(dir), []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := controlserver.LoadOrCreateToken(dir); err == nil {
		t.Fatal("a short token was accepted")
	}
}

// Local services listen on loopback only.
func TestListenLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "[::]:0", "example.org:0", "127.0.0.1"} {
		if ln, err := controlserver.ListenLoopback(addr); err == nil {
			ln.Close()
			t.Errorf("listened on %s", addr)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0"} {
		ln, err := controlserver.ListenLoopback(addr)
		if err != nil {
			t.Errorf("%s: %v", addr, err)
			continue
		}
		ln.Close()
	}
}
