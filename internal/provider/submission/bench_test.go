package submission_test

import (
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider/submission"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// BenchmarkRelayDANE measures the relay's throughput to another
// provider's MX over DANE-validated TLS: b.N small messages are queued
// through submission, and the clock runs until the remote MX (a go-smtp
// server with a certificate pinned by a TLSA 3 1 1 record, its MX RRset
// and TLSA record answered with AD by a validating-resolver stand-in on
// loopback) has them all. Each delivery is its own connection: DNS
// lookups, STARTTLS, the TLSA check, DKIM signing (ed25519 and RSA).
func BenchmarkRelayDANE(b *testing.B) {
	cert := leaf(b, nil, remoteMX)
	r := startRemote(b, "127.0.0.1:0", cert)
	w := newWorld(b, worldOptions{cfg: submission.Config{
		Port: r.port, DNSSECResolverAddr: secureZone(b, tlsa311(cert)).addr,
		Concurrency: 8, Logger: slog.New(slog.DiscardHandler),
	}})
	w.addUser("alice", true)
	c, err := w.dial("alice", w.tokens["alice"])
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		msg := message("alice", "dave@"+remote, "bench"+strconv.Itoa(i))
		if err := c.SendMail("alice@"+domain, []string{"dave@" + remote}, strings.NewReader(msg)); err != nil {
			b.Fatal(err)
		}
	}
	testenv.Eventually(b, 10*time.Minute, "all delivered", func() bool { return len(r.received()) >= b.N })
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
