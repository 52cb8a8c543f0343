package controlapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// seen is one request as the fake server got it.
type seen struct {
	method, uri, auth, body string
}

// fake is a control API answering every request with status and body,
// recording what it got.
func fake(t *testing.T, status int, body string) (addr string, got *[]seen) {
	t.Helper()
	var reqs []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		reqs = append(reqs, seen{r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"), string(b)})
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), &reqs
}

// Each method is one endpoint: its method, path and query, and body.
func TestClientEndpoints(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		call              func(c *Client) error
		method, uri, body string
	}{
		{func(c *Client) error {
			_, err := c.CreateUser(ctx, CreateRequest{Address: "a@x.org", Password: "pw", ProviderRef: ProviderRef{URL: "x.org"}, Invite: "i"})
			return err
		}, "POST", "/v1/users", `{"address":"a@x.org","password":"pw","provider":"x.org","invite":"i"}`},
		{func(c *Client) error {
			_, err := c.Login(ctx, LoginRequest{Address: "a@x.org", Password: "pw"})
			return err
		}, "POST", "/v1/login", `{"address":"a@x.org","password":"pw"}`},
		{func(c *Client) error { return c.Logout(ctx, "a@x.org") }, "POST", "/v1/logout", `{"address":"a@x.org"}`},
		{func(c *Client) error {
			return c.ChangePassword(ctx, PasswdRequest{Address: "a@x.org", Old: "o", New: "n"})
		},
			"POST", "/v1/passwd", `{"address":"a@x.org","old_password":"o","new_password":"n"}`},
		{func(c *Client) error { _, err := c.Status(ctx); return err }, "GET", "/v1/status", ""},
		{func(c *Client) error { _, err := c.Keys(ctx, "a+b@x.org"); return err }, "GET", "/v1/keys?address=a%2Bb%40x.org", ""},
		{func(c *Client) error { _, err := c.Export(ctx, "", true); return err }, "GET", "/v1/keys/export?address=&secret=1", ""},
		{func(c *Client) error { _, err := c.ContactKey(ctx, "a@x.org", "b@y.org"); return err },
			"GET", "/v1/keys/contact?address=a%40x.org&contact=b%40y.org", ""},
		{func(c *Client) error { _, err := c.FetchKey(ctx, ContactRequest{Contact: "b@y.org"}); return err },
			"POST", "/v1/keys/fetch", `{"contact":"b@y.org"}`},
		{func(c *Client) error {
			_, err := c.TrustKey(ctx, ContactRequest{Address: "a@x.org", Contact: "b@y.org", Fingerprint: "AB"})
			return err
		}, "POST", "/v1/keys/trust", `{"address":"a@x.org","contact":"b@y.org","fingerprint":"AB"}`},
		{func(c *Client) error { _, err := c.MailConfig(ctx, "a@x.org"); return err }, "GET", "/v1/mail/config?address=a%40x.org&format=json", ""},
		{func(c *Client) error { _, err := c.MailConfigFile(ctx, "a@x.org", FormatApple); return err },
			"GET", "/v1/mail/config?address=a%40x.org&format=apple", ""},
	} {
		answer := "{}"
		if strings.HasPrefix(tc.uri, "/v1/keys?") {
			answer = "[]"
		}
		addr, got := fake(t, 200, answer)
		if err := tc.call(NewClient(addr, "tok")); err != nil {
			t.Errorf("%s %s: %v", tc.method, tc.uri, err)
		}
		if len(*got) != 1 {
			t.Fatalf("%s %s: %d requests", tc.method, tc.uri, len(*got))
		}
		r := (*got)[0]
		if r.method != tc.method || r.uri != tc.uri || r.auth != "Bearer tok" || strings.TrimSpace(r.body) != tc.body {
			t.Errorf("got %+v, want %s %s %s", r, tc.method, tc.uri, tc.body)
		}
	}
}

// An error answer is an *Error whose text is the server's message alone
// (bitmaskctl prints it as is), or the HTTP status without one.
func TestClientErrors(t *testing.T) {
	addr, _ := fake(t, 401, `{"error":"wrong username or password"}`)
	_, err := NewClient(addr, "tok").Login(context.Background(), LoginRequest{})
	var e *Error
	if !errors.As(err, &e) || e.Status != 401 || err.Error() != "wrong username or password" {
		t.Fatalf("got %#v", err)
	}
	addr, _ = fake(t, 404, "404 page not found")
	_, err = NewClient(addr, "tok").Status(context.Background())
	if !errors.As(err, &e) || e.Status != 404 || err.Error() != "404 Not Found" {
		t.Fatalf("got %#v", err)
	}
	if _, err := NewClient("127.0.0.1:1", "tok").Status(context.Background()); err == nil || !strings.Contains(err.Error(), "cannot reach bitmaskd at 127.0.0.1:1") {
		t.Fatalf("unreachable: %v", err)
	}
}

// A local client reads the token from the data directory at its first
// request, so it can be made before bitmaskd first starts.
func TestLocalClientReadsTheToken(t *testing.T) {
	dir := t.TempDir()
	addr, got := fake(t, 200, `{"accounts":[{"address":"a@x.org","sync":{"last_seq":3}}]}`)
	c := NewLocalClient(addr, dir)
	if _, err := c.Status(context.Background()); err == nil || !strings.Contains(err.Error(), "is bitmaskd running with --data") || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("without a token file: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "control.token"), []byte("sesame\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(context.Background())
	if err != nil || len(st.Accounts) != 1 || st.Accounts[0].Sync.LastSeq != 3 {
		t.Fatalf("status: %+v %v", st, err)
	}
	if len(*got) != 1 || (*got)[0].auth != "Bearer sesame" {
		t.Fatalf("requests: %+v", *got)
	}
}

// The wire names of the account status are the API's (docs/control-api.md §3).
func TestAccountStatusJSON(t *testing.T) {
	b, _ := json.Marshal(AccountStatus{Address: "a@x.org", State: "ready"})
	want := `{"address":"a@x.org","state":"ready","online":false,"provider":"","sync":{"last_seq":0,"head":0,"pending":0,"rejected":0,"pulled":0,"syncing":false,"online":false}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
}
