package contactkeys_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/contactkeys"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
)

// wkdServer serves one key by Web Key Directory for every domain (the
// client dials it whatever the host) and counts the lookups.
func wkdServer(t *testing.T, withKey string, key []byte) (*http.Client, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := newTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/.well-known/openpgpkey/") {
			http.NotFound(w, r)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/policy") {
			return
		}
		hits.Add(1)
		if r.URL.Query().Get("l") != withKey {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(key)
	}))
	return dialingOnly(srv, 5*time.Second), &hits
}

// TestDiscoveryRemembersMisses: a key found by WKD is kept and not looked
// up again; an address with no key anywhere is not asked for again until
// the miss expires; a key learned meanwhile is found at once.
func TestDiscoveryRemembersMisses(t *testing.T) {
	ctx := context.Background()
	p := testenv.StartProvider(t, testenv.Options{})
	d := testenv.NewDaemon(t, testenv.DaemonOptions{})
	A := testenv.NewUser(t, d, p, "kim@"+testenv.Domain)
	now := time.Now()
	e, err := pgpkey.Generate("ana@wkd.example", time.Hour*24*365, now)
	if err != nil {
		t.Fatal(err)
	}
	var raw strings.Builder
	if err := e.Serialize(&raw); err != nil {
		t.Fatal(err)
	}
	hc, hits := wkdServer(t, "ana", []byte(raw.String()))
	var nick atomic.Int32
	km := contactkeys.New(A.Docs, A.Keys())
	clock := now
	disc := &contactkeys.Discovery{
		Keys: km, ProviderDomain: testenv.Domain, WKD: hc,
		Nicknym: func(ctx context.Context, addr string) (string, error) {
			nick.Add(1)
			kr, err := A.Client().LookupKey(ctx, addr)
			if err != nil {
				return "", err
			}
			return kr.OpenPGP, nil
		},
		Now: func() time.Time { return clock },
	}
	// Found by WKD, then from the cache.
	for range 2 {
		got, err := disc.Find(ctx, "Ana@wkd.example")
		if err != nil || pgpkey.Fingerprint(got) != pgpkey.Fingerprint(e) {
			t.Fatalf("find by WKD: %v", err)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("%d WKD lookups for one key", n)
	}
	// No key at WKD (both methods asked): asked again only once the miss
	// has expired.
	if _, err := disc.Find(ctx, "bob@wkd.example"); !errors.Is(err, contactkeys.ErrNoKey) {
		t.Fatalf("no key: %v", err)
	}
	after := hits.Load()
	if after == 1 {
		t.Fatal("WKD was not asked")
	}
	for range 2 {
		if _, err := disc.Find(ctx, "bob@wkd.example"); !errors.Is(err, contactkeys.ErrNoKey) {
			t.Fatalf("no key: %v", err)
		}
	}
	if n := hits.Load(); n != after {
		t.Fatalf("WKD asked again for a remembered miss: %d lookups, then %d", after, n)
	}
	clock = clock.Add(11 * time.Minute)
	if _, err := disc.Find(ctx, "bob@wkd.example"); !errors.Is(err, contactkeys.ErrNoKey) {
		t.Fatalf("no key: %v", err)
	}
	if n := hits.Load(); n == after {
		t.Fatal("WKD not asked after the miss expired")
	}
	// No such user at the provider: nicknym asked once.
	for range 3 {
		if _, err := disc.Find(ctx, "nobody@"+testenv.Domain); !errors.Is(err, contactkeys.ErrNoKey) {
			t.Fatalf("nicknym miss: %v", err)
		}
	}
	if n := nick.Load(); n != 1 {
		t.Fatalf("%d nicknym lookups, want 1", n)
	}
	// A key learned meanwhile (say from Autocrypt) is found despite the
	// remembered miss.
	e2, err := pgpkey.Generate("bob@wkd.example", time.Hour*24*365, now)
	if err != nil {
		t.Fatal(err)
	}
	arm, _ := pgpkey.ArmorPublic(e2)
	if _, err := km.Learn("bob@wkd.example", arm, contactkeys.WeakChain, "autocrypt"); err != nil {
		t.Fatal(err)
	}
	if got, err := disc.Find(ctx, "bob@wkd.example"); err != nil || pgpkey.Fingerprint(got) != pgpkey.Fingerprint(e2) {
		t.Fatalf("learned key: %v", err)
	}
}

// TestDiscoveryDoesNotRememberCutShortLookups: a WKD lookup that timed
// out is not remembered as "no key": the next send asks again.
func TestDiscoveryDoesNotRememberCutShortLookups(t *testing.T) {
	ctx := context.Background()
	p := testenv.StartProvider(t, testenv.Options{})
	d := testenv.NewDaemon(t, testenv.DaemonOptions{})
	A := testenv.NewUser(t, d, p, "lou@"+testenv.Domain)
	slow := newTLSServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		http.NotFound(w, r)
	}))
	// The lookups are counted as connections made: on a loaded machine
	// the timeout can end one during the TLS handshake, before the
	// server sees a request. Without keep-alive, each request dials.
	hc := dialingOnly(slow, 50*time.Millisecond)
	tr := hc.Transport.(*http.Transport)
	tr.DisableKeepAlives = true
	var dials atomic.Int32
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return dial(ctx, network, addr)
	}
	disc := &contactkeys.Discovery{Keys: contactkeys.New(A.Docs, A.Keys()), ProviderDomain: testenv.Domain, WKD: hc}
	if _, err := disc.Find(ctx, "slow@wkd.example"); !errors.Is(err, contactkeys.ErrNoKey) {
		t.Fatalf("timed-out lookup: %v", err)
	}
	first := dials.Load()
	if _, err := disc.Find(ctx, "slow@wkd.example"); !errors.Is(err, contactkeys.ErrNoKey) {
		t.Fatalf("timed-out lookup: %v", err)
	}
	if n := dials.Load(); first == 0 || n == first {
		t.Fatalf("WKD asked %d, then %d times: a timed-out lookup was remembered", first, n)
	}
}
