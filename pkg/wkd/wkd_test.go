package wkd

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHash(t *testing.T) {
	// The example of draft-koch-openpgp-webkey-service §3.1.
	if got := Hash("Joe.Doe"); got != "iy9q119eutrkn8s1mk4r39qejnbu3n5q" {
		t.Fatalf("Hash(Joe.Doe) = %s", got)
	}
	adv, dir, err := URLs("Joe.Doe@Example.ORG")
	if err != nil {
		t.Fatal(err)
	}
	if adv != "https://openpgpkey.example.org/.well-known/openpgpkey/example.org/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe" {
		t.Fatal(adv)
	}
	if dir != "https://example.org/.well-known/openpgpkey/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe" {
		t.Fatal(dir)
	}
	for _, bad := range []string{"", "nobody", "@x", "a@", "a@b/c"} {
		if _, _, err := URLs(bad); err == nil {
			t.Errorf("URLs(%q) accepted", bad)
		}
	}
}

func TestLookupFallsBackToDirect(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Host, "openpgpkey.") {
			http.NotFound(w, r)
			return
		}
		if r.URL.Path == "/.well-known/openpgpkey/hu/"+Hash("alice") {
			w.Write([]byte("KEYBYTES"))
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	hc := srv.Client()
	hc.Transport = rewrite{rt: srv.Client().Transport, addr: srv.Listener.Addr().String()}
	b, err := Lookup(context.Background(), hc, "alice@example.test")
	if err != nil || string(b) != "KEYBYTES" {
		t.Fatalf("%q %v", b, err)
	}
	if _, err := Lookup(context.Background(), hc, "bob@example.test"); err != ErrNotFound {
		t.Fatalf("unknown: %v", err)
	}
}

// rewrite sends every request to the test server, keeping the Host.
type rewrite struct {
	rt   http.RoundTripper
	addr string
}

func (r rewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Host = req.URL.Host
	req.URL.Host = r.addr
	return r.rt.RoundTrip(req)
}
