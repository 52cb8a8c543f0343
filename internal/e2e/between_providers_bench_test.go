package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
)

// BenchmarkRelayDANE: the relay's throughput to a second provider over
// DANE-validated TLS (issue 14's figure). N messages of 10 KB
// (BENCH_RELAY_MESSAGES, default 200) are submitted to a.test's
// submission service for bob@b.test; the time runs from the first
// submission until all are in bob's incoming queue at b.test (taken by
// b.test's MX over STARTTLS that a.test's relay checked against the
// TLSA record, and encrypted to bob's key on arrival).
func BenchmarkRelayDANE(b *testing.B) {
	n := 200
	if v, err := strconv.Atoi(os.Getenv("BENCH_RELAY_MESSAGES")); err == nil && v > 0 {
		n = v
	}
	env := startDANEProviders(b)
	ctx := context.Background()
	// alice at a.test with a session token for submission; bob at b.test
	// with a published key (no device: his queue fills).
	token := rand.Text()
	sum := sha256.Sum256([]byte(token))
	if err := env.a.Store.CreateUser(ctx, &storage.User{Login: "alice", Created: time.Now()}, ""); err != nil {
		b.Fatal(err)
	}
	if err := env.a.Store.CreateSession(ctx, &storage.Session{TokenHash: sum[:], Login: "alice", Expires: time.Now().Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	if err := env.b.Store.CreateUser(ctx, &storage.User{Login: "bob", Created: time.Now()}, ""); err != nil {
		b.Fatal(err)
	}
	bobKey, err := pgpkey.Generate("bob@b.test", 0, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	pub, _ := pgpkey.ArmorPublic(bobKey)
	if err := env.b.Store.PutKey(ctx, "bob@b.test", []byte(pub)); err != nil {
		b.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(env.a.TLSFiles().CACertPEM)
	host, _, _ := net.SplitHostPort(env.a.SubmissionAddr)

	b.ResetTimer()
	for range b.N {
		before := incomingCount(b, env.b, "bob")
		c, err := smtp.DialStartTLS(env.a.SubmissionAddr, &tls.Config{RootCAs: roots, ServerName: host})
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Auth(sasl.NewPlainClient("", "alice@a.test", token)); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for i := range n {
			msg := message10k(i, "bob@b.test")
			msg = bytes.Replace(msg, []byte("From: Sender "), []byte("X-Was: "), 1)
			msg = append([]byte("From: alice@a.test\r\n"), msg...)
			if err := c.SendMail("alice@a.test", []string{"bob@b.test"}, bytes.NewReader(msg)); err != nil {
				b.Fatal(err)
			}
		}
		c.Close()
		submitted := time.Since(start)
		testenv.Eventually(b, 10*time.Minute, "all relayed to b.test", func() bool { return incomingCount(b, env.b, "bob") >= before+n })
		took := time.Since(start)
		b.ReportMetric(float64(n)/took.Seconds(), "msgs/s")
		b.ReportMetric(float64(n)*10/1024/took.Seconds(), "MB/s")
		b.ReportMetric(float64(n)/submitted.Seconds(), "submit-msgs/s")
	}
	b.StopTimer()
	if got := daneSuccesses(b, env.a, "b.test"); got < int64(n) {
		b.Fatalf("%d DANE-validated sessions to b.test, want at least %d", got, n)
	}
	if env.evil.count() != 0 {
		b.Fatal("the attacker's host was contacted")
	}
}
