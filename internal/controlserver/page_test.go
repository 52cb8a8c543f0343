package controlserver_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/bitmask-go/bitmask/internal/controlapi"
	"github.com/bitmask-go/bitmask/internal/controlserver"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// The local page is served beside the API: outside /v1/ without the
// bearer token but after the Host check; a holder of the token mints its
// one-time codes.
func TestPageMounted(t *testing.T) {
	url := serve(t, controlserver.Handler(testenv.NewDaemon(t, testenv.DaemonOptions{}), token))
	if status, body := do(t, "GET", url+"/", "evil.example", "", ""); status != 403 || body != `{"error":"bad Host"}` {
		t.Errorf("page with a bad Host: %d %s", status, body)
	}
	if status, body := do(t, "GET", url+"/", "", "", ""); status != 401 || !strings.Contains(body, "bitmaskctl open") {
		t.Errorf("page without a session: %d %s", status, body)
	}
	if status, body := do(t, "POST", url+"/v1/page/code", "", "", `{"path":"/setup"}`); status != 401 {
		t.Errorf("code without the token: %d %s", status, body)
	}
	host := strings.TrimPrefix(url, "http://")
	pc, err := controlapi.NewClient(host, token).PageURL(context.Background(), "/setup")
	if err != nil || !strings.HasPrefix(pc.URL, url+"/auth?code=") || !strings.HasSuffix(pc.URL, "&next=%2Fsetup") || pc.Expires.IsZero() {
		t.Fatalf("page code: %+v %v", pc, err)
	}
	jar, _ := cookiejar.New(nil)
	resp, err := (&http.Client{Jar: jar}).Get(pc.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/setup" {
		t.Errorf("code led to %d %s", resp.StatusCode, resp.Request.URL)
	}
}

// LoginURL (for the tray) works while Serve serves the daemon.
func TestLoginURL(t *testing.T) {
	r := testenv.StartDaemon(t, testenv.DaemonOptions{})
	// Once the API answers, Serve has registered the page.
	if _, err := controlapi.NewLocalClient(r.ControlAddr, r.Dir).Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	u, err := controlserver.LoginURL(r.Daemon, "/keys")
	if err != nil || !strings.HasPrefix(u, "http://"+r.ControlAddr+"/auth?code=") {
		t.Fatalf("LoginURL: %s %v", u, err)
	}
	jar, _ := cookiejar.New(nil)
	resp, err := (&http.Client{Jar: jar}).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/keys" {
		t.Errorf("LoginURL led to %d %s", resp.StatusCode, resp.Request.URL)
	}
	r.Stop()
	if _, err := controlserver.LoginURL(r.Daemon, "/"); err == nil {
		t.Error("LoginURL after serving stopped")
	}
}
