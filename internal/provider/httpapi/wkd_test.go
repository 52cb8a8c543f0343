package httpapi_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
	"github.com/bitmask-go/bitmask/pkg/wkd"
)

// publishWith signs up login, publishes a key with the login's address
// and the extra addresses as user IDs, and returns the key.
func publishWith(t *testing.T, p *testenv.Provider, login string, extra ...string) *openpgp.Entity {
	t.Helper()
	u := signup(t, p, login)
	e, err := pgpkey.Generate(u.address(), 24*time.Hour*365, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range extra {
		if err := e.AddUserId("", "", a, nil); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := pgpkey.ArmorPublic(e)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.c.PublishKey(ctx(t), pub); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestWKDServesPublishedKeys: both methods serve the key the user
// published through nicknym, in binary, with only the user IDs of the
// address; the policy files are there; unknown users, users without a
// key, other domains, wrong hashes and requests without l are 404.
func TestWKDServesPublishedKeys(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	r := newRaw(t, p)
	pub := publishWith(t, p, "wanda", "wanda@elsewhere.test")
	signup(t, p, "nokey")
	h := wkd.Hash("wanda")
	if h != wkd.Hash("Wanda") {
		t.Fatal("the hash is not of the lowercased local part")
	}
	var served [][]byte
	for _, path := range []string{
		"/.well-known/openpgpkey/" + testenv.Domain + "/hu/" + h + "?l=wanda",
		"/.well-known/openpgpkey/EXAMPLE.test/hu/" + h + "?l=Wanda",
		"/.well-known/openpgpkey/hu/" + h + "?l=wanda",
	} {
		st, b := r.do(http.MethodGet, path, "", nil)
		if st != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, st, b)
		}
		el, err := openpgp.ReadKeyRing(bytes.NewReader(b))
		if err != nil || len(el) != 1 {
			t.Fatalf("GET %s: not one binary key: %v", path, err)
		}
		if pgpkey.Fingerprint(el[0]) != pgpkey.Fingerprint(pub) {
			t.Fatalf("GET %s: served %s, published %s", path, pgpkey.Fingerprint(el[0]), pgpkey.Fingerprint(pub))
		}
		if got := pgpkey.Addresses(el[0]); len(got) != 1 || got[0] != "wanda@"+testenv.Domain {
			t.Fatalf("GET %s: user IDs %v, want only the address's", path, got)
		}
		if el[0].PrivateKey != nil {
			t.Fatal("secret key material served")
		}
		served = append(served, b)
	}
	if !bytes.Equal(served[0], served[2]) {
		t.Fatal("the two methods serve different bytes")
	}
	for _, path := range []string{"/.well-known/openpgpkey/policy", "/.well-known/openpgpkey/" + testenv.Domain + "/policy"} {
		if st, b := r.do(http.MethodGet, path, "", nil); st != http.StatusOK || len(b) != 0 {
			t.Fatalf("GET %s: %d %q", path, st, b)
		}
	}
	for _, path := range []string{
		"/.well-known/openpgpkey/other.test/hu/" + h + "?l=wanda",
		"/.well-known/openpgpkey/other.test/policy",
		"/.well-known/openpgpkey/elsewhere.test/hu/" + h + "?l=wanda",
		"/.well-known/openpgpkey/hu/" + wkd.Hash("nobody") + "?l=nobody",
		"/.well-known/openpgpkey/hu/" + wkd.Hash("nokey") + "?l=nokey",
		"/.well-known/openpgpkey/hu/" + wkd.Hash("nobody") + "?l=wanda",
		"/.well-known/openpgpkey/hu/" + h,
		"/.well-known/openpgpkey/hu/" + h + "?l=" + url.QueryEscape("wanda@"+testenv.Domain),
		"/.well-known/openpgpkey/hu/",
		"/.well-known/openpgpkey/" + testenv.Domain + "/hu/" + h + "/x?l=wanda",
		"/.well-known/openpgpkey/submission-address",
	} {
		if st, b := r.do(http.MethodGet, path, "", nil); st != http.StatusNotFound {
			t.Errorf("GET %s: %d %s, want 404", path, st, b)
		}
	}
}

// TestWKDClientReachesLeapd: the WKD client (pkg/wkd) finds the key at
// leapd by the domain's name over TLS verified against leapd's CA (the
// advanced host, which leapd's certificate does not name, fails; the
// direct method answers), and Select takes it.
func TestWKDClientReachesLeapd(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	pub := publishWith(t, p, "wade", "wade@elsewhere.test")
	r := newRaw(t, p)
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: r.pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, p.Addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr, Timeout: time.Minute}
	raw, err := wkd.Lookup(ctx(t), hc, "Wade@"+testenv.Domain)
	if err != nil {
		t.Fatal(err)
	}
	e, err := wkd.Select(raw, "wade@"+testenv.Domain, time.Now())
	if err != nil || pgpkey.Fingerprint(e) != pgpkey.Fingerprint(pub) {
		t.Fatalf("select: %v", err)
	}
	if _, err := wkd.Lookup(ctx(t), hc, "nobody@"+testenv.Domain); err == nil {
		t.Fatal("a key for nobody")
	}
}

// TestKeyLookupsAreLimited: WKD and nicknym lookups share a bucket per
// client address (600, refilled per minute); past it, 429; a minute
// later, lookups pass again.
func TestKeyLookupsAreLimited(t *testing.T) {
	p := testenv.StartProvider(t, testenv.Options{})
	publishWith(t, p, "lena")
	var mu sync.Mutex
	clock := time.Now()
	httpapi.SetLookupClock(p.Server, func() time.Time { mu.Lock(); defer mu.Unlock(); return clock })
	r := newRaw(t, p)
	lookup := func(i int) int {
		path := "/.well-known/openpgpkey/hu/" + wkd.Hash("lena") + "?l=lena"
		if i%2 == 1 {
			path = "/1/keys?address=lena@" + testenv.Domain
		}
		st, b := r.do(http.MethodGet, path, "", nil)
		if st != http.StatusOK && st != http.StatusTooManyRequests {
			t.Fatalf("lookup %d: %d %s", i, st, b)
		}
		return st
	}
	for i := range 600 {
		if st := lookup(i); st != http.StatusOK {
			t.Fatalf("lookup %d refused within the allowance", i)
		}
	}
	for i := range 4 {
		if st := lookup(i); st != http.StatusTooManyRequests {
			t.Fatalf("lookup %d past the allowance: %d", 600+i, st)
		}
	}
	mu.Lock()
	clock = clock.Add(time.Minute)
	mu.Unlock()
	if st := lookup(0); st != http.StatusOK {
		t.Fatalf("a minute later: %d", st)
	}
}
