package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/foxcpp/go-mockdns"

	"github.com/bitmask-go/bitmask/internal/contactkeys"
	"github.com/bitmask-go/bitmask/internal/outbox"
	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
)

// remoteKeyClient is the WKD client of the daemons in these tests, with
// the name-resolution seam: it trusts only the given providers' CAs (in
// place of the system's roots) and dials hosts[name] for the test
// domains' names; any other name does not resolve, as on a network
// without them. It counts the requests to each host name.
func remoteKeyClient(t *testing.T, hosts map[string]string, cas ...[]byte) (*http.Client, func(host string) int32) {
	t.Helper()
	roots := x509.NewCertPool()
	for _, pem := range cas {
		if !roots.AppendCertsFromPEM(pem) {
			t.Fatal("CA is not PEM")
		}
	}
	counts := map[string]*atomic.Int32{}
	for h := range hosts {
		counts[h] = &atomic.Int32{}
	}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if to, ok := hosts[host]; ok {
				counts[host].Add(1)
				addr = to
			} else if net.ParseIP(host) == nil {
				return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		DisableKeepAlives: true, // each request dials, so dials count requests
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}, func(h string) int32 { return counts[h].Load() }
}

// twoProviders starts leapd for a.test and b.test, each with its own CA;
// a.test's relay delivers b.test's mail to b.test's MX.
func twoProviders(t *testing.T) (a, b *testenv.Provider) {
	b = testenv.StartProvider(t, testenv.Options{Config: httpapi.Config{Domain: "b.test"}})
	_, mxPort := splitPort(t, b.MXAddr)
	a = testenv.StartProvider(t, testenv.Options{
		Config: httpapi.Config{Domain: "a.test"},
		DNS: map[string]mockdns.Zone{
			"b.test.":    {MX: []net_MX{{Host: "mx.b.test.", Pref: 10}}},
			"mx.b.test.": {A: []string{"127.0.0.1"}},
		},
		OutboundPort: mxPort,
	})
	return a, b
}

// TestRemoteKeyDiscovery: two real providers, a.test and b.test, each
// with its own CA. alice@a.test's bitmaskd finds bob@b.test's key at
// bob's provider (WKD's direct method at https://b.test, verified
// against b.test's CA; the advanced host does not resolve) and keeps it
// at provider_trust; the second lookup is answered from the cache. The
// first message alice sends leaves her device encrypted to bob's key,
// crosses from a.test's relay to b.test's MX, and bob reads it
// decrypted with alice's signature valid at provider_trust (bob's
// bitmaskd found her key at a.test the same way).
func TestRemoteKeyDiscovery(t *testing.T) {
	a, b := twoProviders(t)
	hosts := map[string]string{"a.test": a.Addr, "b.test": b.Addr}
	hc, requests := remoteKeyClient(t, hosts, a.TLSFiles().CACertPEM, b.TLSFiles().CACertPEM)

	rb := testenv.StartDaemon(t, testenv.DaemonOptions{WKD: hc})
	bobAcct, err := rb.CreateUser(ctx(t), "bob@b.test", []byte(password), b.Ref(), "")
	if err != nil {
		t.Fatal(err)
	}
	bob := &device{rb, bobAcct}
	tap := &relayTap{}
	ra := testenv.StartDaemon(t, testenv.DaemonOptions{WKD: hc, WrapRelay: func(next outbox.Relay) outbox.Relay { tap.next = next; return tap }})
	aliceAcct, err := ra.CreateUser(ctx(t), "alice@a.test", []byte(password), a.Ref(), "")
	if err != nil {
		t.Fatal(err)
	}
	alice := &device{ra, aliceAcct}
	bobKey, err := bob.acct.CurrentKey()
	if err != nil {
		t.Fatal(err)
	}

	// Each message is checked as it left alice's device: encrypted to
	// bob's key. Times are from the SMTP submit to bob's INBOX; the first
	// includes both key discoveries (bob's key at alice's device for
	// encrypting, alice's at bob's for the signature).
	send := func(i int) time.Duration {
		marker := fmt.Sprintf("remote-body-marker-%d-9e1c", i)
		msg := plainMessage("alice@a.test", "bob@b.test", fmt.Sprintf("across providers %d", i), marker)
		begin := time.Now()
		if err := alice.submit(t, "alice@a.test", []string{"bob@b.test"}, msg); err != nil {
			t.Fatal(err)
		}
		waitMessages(t, bob, "INBOX", i)
		took := time.Since(begin)
		cp := tap.copies()[i-1]
		if bytes.Contains(cp.data, []byte(marker)) || !bytes.Contains(cp.data, []byte("multipart/encrypted")) {
			t.Fatalf("copy %d left alice's device unencrypted:\n%s", i, cp.data)
		}
		enc, _ := bobKey.EncryptionKey(time.Now())
		ids := recipientKeyIDs(t, cp.data)
		found := false
		for _, id := range ids {
			found = found || id == enc.PublicKey.KeyId
		}
		if !found {
			t.Fatalf("copy %d is not encrypted to bob's key (%x)", i, ids)
		}
		return took
	}
	first := send(1)
	got, err := alice.acct.DiscoverKey(ctx(t), "Bob@B.test")
	if err != nil || pgpkey.Fingerprint(got) != pgpkey.Fingerprint(bobKey) {
		t.Fatalf("discovering bob's key: %v", err)
	}
	k, err := alice.acct.Contacts.Get("bob@b.test")
	if err != nil || k.Level != contactkeys.ProviderTrust || k.Source != "wkd" {
		t.Fatalf("kept %+v, %v; want provider_trust from wkd", k, err)
	}
	if got := pgpkey.Addresses(got); len(got) != 1 || got[0] != "bob@b.test" {
		t.Fatalf("user IDs %v", got)
	}
	n := requests("b.test")
	if _, err := alice.acct.DiscoverKey(ctx(t), "bob@b.test"); err != nil {
		t.Fatal(err)
	}
	if requests("b.test") != n {
		t.Fatal("the second lookup asked b.test again instead of the cache")
	}
	// No such user at b.test: no key (the message to it would go signed,
	// as to any address without a key).
	if _, err := alice.acct.DiscoverKey(ctx(t), "nobody@b.test"); !errors.Is(err, contactkeys.ErrNoKey) {
		t.Fatalf("nobody@b.test: %v", err)
	}

	second := send(2)
	t.Logf("submit to the other provider's INBOX: first message %v (key discovery included), second %v", first, second)
	msgs := fetchAll(t, bob.imap(t, nil), "INBOX")
	aliceKey, _ := alice.acct.CurrentKey()
	for i, m := range msgs {
		if !strings.Contains(m, fmt.Sprintf("remote-body-marker-%d-9e1c", i+1)) {
			t.Fatalf("message %d is not the plaintext:\n%s", i+1, m)
		}
		if e := header(m, "X-Leap-Encryption"); e != "decrypted" {
			t.Fatalf("message %d: X-Leap-Encryption %q", i+1, e)
		}
		want := fmt.Sprintf("valid; signer=%q; level=provider_trust; pubkey=%q", "alice@a.test", pgpkey.Fingerprint(aliceKey))
		if s := header(m, "X-Leap-Signature"); s != want {
			t.Fatalf("message %d: X-Leap-Signature %q, want %q", i+1, s, want)
		}
	}
}

// TestRemoteKeyNicknym: b.test's web host is not its API: https://b.test
// serves only provider.json (the API at its own address, under b.test's
// CA, which the roots do not include), so WKD has nothing and the key
// comes from b.test's nicknym through provider.json with the CA pinned
// by its fingerprint, at provider_trust.
func TestRemoteKeyNicknym(t *testing.T) {
	a, b := twoProviders(t)
	rb := testenv.StartDaemon(t, testenv.DaemonOptions{})
	bobAcct, err := rb.CreateUser(ctx(t), "bob@b.test", []byte(password), b.Ref(), "")
	if err != nil {
		t.Fatal(err)
	}
	bobKey, _ := bobAcct.CurrentKey()
	// The web host of b.test, under a CA of its own (standing in for a
	// public one): provider.json as b.test's leapd serves it, and
	// nothing else.
	webTLS, err := httpapi.LoadOrCreateTLS(t.TempDir(), []string{"b.test"})
	if err != nil {
		t.Fatal(err)
	}
	web := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/provider.json" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(b.ProviderJSON())
	}))
	web.TLS = &tls.Config{Certificates: []tls.Certificate{webTLS.ServerCert}}
	web.StartTLS()
	t.Cleanup(web.Close)
	hc, requests := remoteKeyClient(t, map[string]string{"b.test": web.Listener.Addr().String()}, webTLS.CACertPEM)
	ra := testenv.StartDaemon(t, testenv.DaemonOptions{WKD: hc})
	alice, err := ra.CreateUser(ctx(t), "alice@a.test", []byte(password), a.Ref(), "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := alice.DiscoverKey(ctx(t), "bob@b.test")
	if err != nil || pgpkey.Fingerprint(got) != pgpkey.Fingerprint(bobKey) {
		t.Fatalf("discovering bob's key: %v", err)
	}
	if k, err := alice.Contacts.Get("bob@b.test"); err != nil || k.Level != contactkeys.ProviderTrust || k.Source != "nicknym" {
		t.Fatalf("kept %+v, %v; want provider_trust from nicknym", k, err)
	}
	if requests("b.test") == 0 {
		t.Fatal("b.test's web host was not asked")
	}
}
