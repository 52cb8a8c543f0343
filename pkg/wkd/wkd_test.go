package wkd

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
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

func serialize(t testing.TB, es ...*openpgp.Entity) []byte {
	var b bytes.Buffer
	for _, e := range es {
		if err := e.Serialize(&b); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func newKey(t testing.TB, address string, created time.Time, life time.Duration) *openpgp.Entity {
	e, err := openpgp.NewEntity("", "", address, &packet.Config{
		Algorithm: packet.PubKeyAlgoEdDSA, Time: func() time.Time { return created }, KeyLifetimeSecs: uint32(life.Seconds()),
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestSelect: the one usable key with a user ID of the address, with
// only that user ID; keys of other addresses and expired ones skipped;
// two usable keys refused; garbage refused.
func TestSelect(t *testing.T) {
	now := time.Now()
	good := newKey(t, "Ann@Example.test", now, time.Hour*24*365)
	if err := good.AddUserId("", "", "ann@elsewhere.test", nil); err != nil {
		t.Fatal(err)
	}
	other := newKey(t, "bea@example.test", now, time.Hour*24*365)
	second := newKey(t, "ann@example.test", now, time.Hour*24*365)
	expired := newKey(t, "ann@example.test", now.Add(-48*time.Hour), time.Hour)
	e, err := Select(serialize(t, expired, other, good), "ann@example.test", now)
	if err != nil || e.PrimaryKey.KeyId != good.PrimaryKey.KeyId {
		t.Fatalf("select: %v", err)
	}
	if len(e.Identities) != 1 {
		t.Fatalf("%d user IDs kept", len(e.Identities))
	}
	for _, id := range e.Identities {
		if id.UserId.Email != "Ann@Example.test" {
			t.Fatalf("kept %q", id.UserId.Email)
		}
	}
	if len(good.Identities) != 2 {
		t.Fatal("Select changed the key it read")
	}
	if _, err := Select(serialize(t, good, second), "ann@example.test", now); !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("two keys: %v", err)
	}
	for name, raw := range map[string][]byte{
		"other":   serialize(t, other),
		"expired": serialize(t, expired),
		"empty":   nil,
		"garbage": []byte("\x99\x00\x03abc"),
		"armor":   []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnope\n-----END PGP PUBLIC KEY BLOCK-----\n"),
	} {
		if _, err := Select(raw, "ann@example.test", now); err == nil {
			t.Errorf("%s: selected", name)
		}
	}
}

// TestGetRefuses: an answer over the cap, a redirect to another host,
// more than three redirects within the host, and TLS the client does
// not verify are errors; a redirect within the host is followed.
func TestGetRefuses(t *testing.T) {
	other := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("KEY")) }))
	defer other.Close()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/huge":
			w.Write(make([]byte, MaxKeyBytes+1))
		case "/cap":
			w.Write(make([]byte, MaxKeyBytes))
		case "/away":
			http.Redirect(w, r, other.URL+"/key", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		case "/moved":
			http.Redirect(w, r, "/key", http.StatusMovedPermanently)
		case "/key":
			w.Write([]byte("KEY"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	hc := srv.Client()
	ctx := context.Background()
	if _, err := Get(ctx, hc, srv.URL+"/huge"); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("huge: %v", err)
	}
	if b, err := Get(ctx, hc, srv.URL+"/cap"); err != nil || len(b) != MaxKeyBytes {
		t.Fatalf("at the cap: %v", err)
	}
	if _, err := Get(ctx, hc, srv.URL+"/away"); !errors.Is(err, ErrRedirect) {
		t.Fatalf("redirect away: %v", err)
	}
	if _, err := Get(ctx, hc, srv.URL+"/loop"); !errors.Is(err, ErrRedirect) {
		t.Fatalf("redirect loop: %v", err)
	}
	if b, err := Get(ctx, hc, srv.URL+"/moved"); err != nil || string(b) != "KEY" {
		t.Fatalf("moved: %q %v", b, err)
	}
	if _, err := Get(ctx, hc, srv.URL+"/nothing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("404: %v", err)
	}
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if _, err := Get(ctx, insecure, srv.URL+"/key"); !errors.Is(err, ErrUnverified) {
		t.Fatalf("unverified: %v", err)
	}
	if _, err := Get(ctx, &http.Client{}, srv.URL+"/key"); err == nil {
		t.Fatal("a certificate of no known root accepted")
	}
}

// FuzzSelect: any answer reads to one key for the address, or an error;
// a key returned has the address and only it.
func FuzzSelect(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	a := newKey(f, "ann@example.test", now.Add(-time.Hour), 0)
	b := newKey(f, "bea@example.test", now.Add(-time.Hour), 0)
	f.Add(serialize(f, a), "ann@example.test")
	f.Add(serialize(f, a, b), "bea@example.test")
	f.Add([]byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxjME\n-----END PGP PUBLIC KEY BLOCK-----\n"), "x@y")
	f.Fuzz(func(t *testing.T, raw []byte, address string) {
		e, err := Select(raw, address, now)
		if err != nil {
			return
		}
		for _, id := range e.Identities {
			if !strings.EqualFold(id.UserId.Email, strings.TrimSpace(address)) {
				t.Fatalf("kept the user ID %q for %q", id.UserId.Email, address)
			}
		}
	})
}
