package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/foxcpp/go-mockdns"
	"github.com/miekg/dns"

	"github.com/bitmask-go/bitmask/internal/outbox"
	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/internal/testenv/dnssec"
)

// TestBetweenProvidersDANE is issue 14's proof with two real providers:
// leapd for a.test and for b.test, each with its MX on port 25 of its
// own loopback address and STARTTLS under its own CA; both domains'
// zones DNSSEC-signed and served by an authoritative server, validated
// by the system's unbound, which both relays use as their validating
// resolver. The plain resolver both relays are also given belongs to an
// attacker: it answers b.test's MX with the attacker's host.
//
// alice@a.test sends to bob@b.test through her bitmaskd. The first
// message leaves her device encrypted to bob's key (found at b.test by
// WKD), crosses to b.test's MX over TLS that a.test's relay checked
// against b.test's TLSA record (the relay's TLS report counts it as a
// DANE success), and bob reads it decrypted with alice's signature
// valid. The attacker's host is never contacted.
//
// Then, each in turn: the TLSA record wrong, STARTTLS stripped by a
// proxy in the path, the MX answer forged at the authoritative side.
// Each ends in a deferral with the matching status and no delivery;
// made right again, the queued message is delivered once (nothing lost).
// MTA-STS in enforce with a wrong certificate is proved one level down,
// against the same unbound (submission's TestRelayThroughUnbound).
func TestBetweenProvidersDANE(t *testing.T) {
	env := startDANEProviders(t)
	a, b, zb := env.a, env.b, env.zb
	ipB, ipProxy, evil := env.ipB, env.ipProxy, env.evil

	hc, _ := remoteKeyClient(t, map[string]string{"a.test": a.Addr, "b.test": b.Addr},
		a.TLSFiles().CACertPEM, b.TLSFiles().CACertPEM)
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
	enc, _ := bobKey.EncryptionKey(time.Now())

	sent := 0
	send := func(marker string) {
		t.Helper()
		msg := plainMessage("alice@a.test", "bob@b.test", "between providers "+marker, marker)
		if err := alice.submit(t, "alice@a.test", []string{"bob@b.test"}, msg); err != nil {
			t.Fatal(err)
		}
		sent++
		testenv.Eventually(t, 30*time.Second, "alice's device relayed the copy", func() bool { return len(tap.copies()) >= sent })
		cp := tap.copies()[sent-1]
		if bytes.Contains(cp.data, []byte(marker)) || !bytes.Contains(cp.data, []byte("multipart/encrypted")) {
			t.Fatalf("the copy left alice's device unencrypted:\n%s", cp.data)
		}
		found := false
		for _, id := range recipientKeyIDs(t, cp.data) {
			found = found || id == enc.PublicKey.KeyId
		}
		if !found {
			t.Fatal("the copy is not encrypted to bob's key")
		}
	}

	// The first message: key discovery, DANE, delivery.
	begin := time.Now()
	send("dane-first-7c21")
	waitMessages(t, bob, "INBOX", 1)
	t.Logf("first message, submit to bob's INBOX on the other provider: %v", time.Since(begin))
	m := fetchAll(t, bob.imap(t, nil), "INBOX")[0]
	if !strings.Contains(m, "dane-first-7c21") || header(m, "X-Leap-Encryption") != "decrypted" ||
		!strings.HasPrefix(header(m, "X-Leap-Signature"), `valid; signer="alice@a.test"`) {
		t.Fatalf("bob's copy:\nX-Leap-Encryption: %s\nX-Leap-Signature: %s\n%s", header(m, "X-Leap-Encryption"), header(m, "X-Leap-Signature"), m)
	}
	waitIncomingDrained(t, b, "bob")
	if got := daneSuccesses(t, a, "b.test"); got < 1 {
		t.Fatalf("a.test's relay reports %d DANE-validated sessions to b.test, want at least 1", got)
	}
	if n := evil.count(); n != 0 {
		t.Fatalf("the attacker's MX (from the plain resolver) got %d connections", n)
	}

	// Each attack in turn: a deferral, never a delivery; repaired, the
	// message arrives once.
	delivered := 1
	for _, tc := range []struct {
		name, status string
		attack       func()
		repair       func()
	}{
		{
			name:   "TLSA record wrong",
			status: "4.7.5",
			attack: func() {
				zb.Remove("_25._tcp.mx", dns.TypeTLSA)
				zb.MustAdd("_25._tcp.mx IN TLSA 3 1 1 " + strings.Repeat("ab", 32))
			},
			repair: func() {
				zb.Remove("_25._tcp.mx", dns.TypeTLSA)
				zb.MustAdd("_25._tcp.mx IN TLSA 3 1 1 " + spkiSHA256(t, b))
			},
		},
		{
			name:   "STARTTLS stripped in the path",
			status: "4.7.10",
			attack: func() {
				stripSTARTTLS(t, net.JoinHostPort(ipProxy, "25"), b.MXAddr)
				zb.Remove("mx", dns.TypeA)
				zb.MustAdd("mx IN A " + ipProxy)
			},
			repair: func() {
				zb.Remove("mx", dns.TypeA)
				zb.MustAdd("mx IN A " + ipB)
			},
		},
		{
			name:   "MX answer forged",
			status: "4.4.3",
			attack: func() { zb.Forge("@", dns.TypeMX) },
			repair: func() {
				zb.Remove("@", dns.TypeMX)
				zb.MustAdd("@ IN MX 10 mx")
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.attack()
			marker := "dane-attack-" + strings.ReplaceAll(tc.name, " ", "-")
			send(marker)
			item := waitDeferred(t, a, tc.status)
			if n := incomingCount(t, b, "bob"); n != 0 {
				t.Fatalf("%d messages reached bob's incoming queue during the attack", n)
			}
			if got := len(fetchAll(t, bob.imap(t, nil), "INBOX")); got != delivered {
				t.Fatalf("bob has %d messages during the attack, want %d", got, delivered)
			}
			t.Logf("deferred: %d %s (%s)", item.Code, item.Status, item.Diagnostic)
			tc.repair()
			delivered++
			waitMessages(t, bob, "INBOX", delivered)
			msgs := fetchAll(t, bob.imap(t, nil), "INBOX")
			if len(msgs) != delivered || !strings.Contains(msgs[delivered-1], marker) {
				t.Fatalf("after the repair bob has %d messages, want %d, the last with %s", len(msgs), delivered, marker)
			}
			waitIncomingDrained(t, b, "bob")
		})
	}
	if n := evil.count(); n != 0 {
		t.Fatalf("the attacker's MX got %d connections", n)
	}
}

// daneEnv is two providers, a.test and b.test, each with its MX on port
// 25 of its own loopback address under its own CA, both zones signed and
// published (MX, A, TLSA 3 1 1 of the MX's certificate) and validated by
// unbound, the relays' validating resolver; their plain resolver is an
// attacker's that answers both domains' MX with the attacker's host.
type daneEnv struct {
	a, b            *testenv.Provider
	za, zb          *dnssec.Zone
	ipA, ipB        string
	ipEvil, ipProxy string
	evil            *connCounter
}

func startDANEProviders(t testing.TB) *daneEnv {
	t.Helper()
	dnssec.NeedUnbound(t)
	if os.Geteuid() != 0 {
		if os.Getenv("BITMASK_REQUIRE_PEERS") == "1" {
			t.Fatal("the MXs listen on port 25: run as root (BITMASK_REQUIRE_PEERS=1)")
		}
		t.Skip("the MXs listen on port 25, which needs root")
	}
	ips := loopbackHosts(t, 4)
	env := &daneEnv{ipA: ips[0], ipB: ips[1], ipEvil: ips[2], ipProxy: ips[3], evil: &connCounter{}}
	srv := dnssec.NewServer(t)
	var err error
	if env.za, err = srv.AddZone("a.test"); err != nil {
		t.Fatal(err)
	}
	if env.zb, err = srv.AddZone("b.test"); err != nil {
		t.Fatal(err)
	}
	u := dnssec.StartUnbound(t, srv)
	env.evil.listen(t, net.JoinHostPort(env.ipEvil, "25"))
	plain := &mockdns.Resolver{Zones: map[string]mockdns.Zone{
		"a.test.":    {MX: []net_MX{{Host: "mx.evil.test.", Pref: 10}}},
		"b.test.":    {MX: []net_MX{{Host: "mx.evil.test.", Pref: 10}}},
		"mx.a.test.": {A: []string{env.ipEvil}},
		"mx.b.test.": {A: []string{env.ipEvil}},
		"evil.test.": {A: []string{env.ipEvil}},
	}}
	start := func(domain, ip string) *testenv.Provider {
		return testenv.StartProvider(t, testenv.Options{
			Config:         httpapi.Config{Domain: domain},
			MXAddr:         net.JoinHostPort(ip, "25"),
			MXTLS:          true,
			Resolver:       plain,
			DNSSECResolver: u.Addr,
			OutboundPort:   25,
		})
	}
	env.a, env.b = start("a.test", env.ipA), start("b.test", env.ipB)
	publish := func(z *dnssec.Zone, ip string, p *testenv.Provider) {
		z.MustAdd("@ IN MX 10 mx", "mx IN A "+ip, "_25._tcp.mx IN TLSA 3 1 1 "+spkiSHA256(t, p))
	}
	publish(env.za, env.ipA, env.a)
	publish(env.zb, env.ipB, env.b)
	return env
}

// loopbackHosts picks n addresses in 127.0.0.0/8 whose port 25 is free,
// from a random /24 so that runs side by side do not meet.
func loopbackHosts(t testing.TB, n int) []string {
	t.Helper()
	for range 50 {
		x, _ := rand.Int(rand.Reader, big.NewInt(200))
		y, _ := rand.Int(rand.Reader, big.NewInt(250))
		var out []string
		for i := 0; i < n; i++ {
			ip := fmt.Sprintf("127.%d.%d.%d", 20+x.Int64(), 1+y.Int64(), 10+i)
			ln, err := net.Listen("tcp", net.JoinHostPort(ip, "25"))
			if err != nil {
				break
			}
			ln.Close()
			out = append(out, ip)
		}
		if len(out) == n {
			return out
		}
	}
	t.Fatal("no free loopback addresses with port 25")
	return nil
}

// spkiSHA256 is the TLSA 3 1 1 data of the provider's server
// certificate (which its MX offers with STARTTLS).
func spkiSHA256(t testing.TB, p *testenv.Provider) string {
	t.Helper()
	leaf, err := x509.ParseCertificate(p.TLSFiles().ServerCert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// daneSuccesses is the relay's count of sessions to domain over TLS a
// TLSA record validated, from its TLS report (RFC 8460).
func daneSuccesses(t testing.TB, p *testenv.Provider, domain string) int64 {
	t.Helper()
	files, err := p.Submission.WriteTLSReports()
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rep struct {
			Policies []struct {
				Policy struct {
					Type   string `json:"policy-type"`
					Domain string `json:"policy-domain"`
				} `json:"policy"`
				Summary struct {
					Success int64 `json:"total-successful-session-count"`
					Failure int64 `json:"total-failure-session-count"`
				} `json:"summary"`
			} `json:"policies"`
		}
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatalf("%s: %v", filepath.Base(f), err)
		}
		for _, pol := range rep.Policies {
			if pol.Policy.Domain == domain && pol.Policy.Type == "tlsa" {
				total += pol.Summary.Success
			}
		}
	}
	return total
}

// waitDeferred waits until the provider's relay has tried the one
// queued message and recorded a temporary failure with status.
func waitDeferred(t *testing.T, p *testenv.Provider, status string) storage.OutboundRecipient {
	t.Helper()
	var got storage.OutboundRecipient
	testenv.Eventually(t, 30*time.Second, "a deferral with "+status, func() bool {
		items, err := p.Store.ListDueOutbound(context.Background(), time.Now().Add(24*time.Hour), 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			for _, r := range it.Recipients {
				if r.State == "failed" {
					t.Fatalf("bounced instead of deferred: %+v", r)
				}
				if r.Status != "" {
					got = r
				}
			}
		}
		return got.Status != ""
	})
	// Code is the remote server's reply, 0 when the relay itself
	// refused to go on (no reply to quote).
	if got.Status != status || (got.Code != 0 && got.Code/100 != 4) {
		t.Fatalf("deferred with %d %s (%s), want %s, temporary", got.Code, got.Status, got.Diagnostic, status)
	}
	return got
}

// incomingCount is the number of messages in the user's incoming queue
// at the provider (what the MX accepted and the device has not taken).
func incomingCount(t testing.TB, p *testenv.Provider, login string) int {
	t.Helper()
	items, _, err := p.Store.ListIncoming(context.Background(), login, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return len(items)
}

// connCounter is a listener that counts connections and closes them.
type connCounter struct{ n atomic.Int32 }

func (c *connCounter) listen(t testing.TB, addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.n.Add(1)
			conn.Close()
		}
	}()
}

func (c *connCounter) count() int32 { return c.n.Load() }

// stripSTARTTLS is an attacker in the path: a proxy on addr to the MX at
// upstream that removes STARTTLS from the server's EHLO answer.
func stripSTARTTLS(t testing.TB, addr, upstream string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			down, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				down.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(up, down); up.Close() }() //nolint:errcheck
			go func() {
				defer wg.Done()
				defer down.Close()
				r := bufio.NewReader(up)
				for {
					line, err := r.ReadString('\n')
					if strings.Contains(strings.ToUpper(line), "STARTTLS") && strings.HasPrefix(line, "250") {
						line = line[:4] + "X-STRIPPED\r\n"
					}
					if _, werr := io.WriteString(down, line); werr != nil || err != nil {
						return
					}
				}
			}()
		}
	}()
}
