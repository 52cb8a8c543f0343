package mx_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/provider/mx"
)

// BenchmarkMXAccept sends 10 KB messages to one recipient over one SMTP
// connection, a transaction each: SPF (mock DNS), encryption to the
// recipient's key and a durable store per message.
func BenchmarkMXAccept(b *testing.B) {
	w := newWorld(b, worldOptions{cfg: mx.Config{Logger: slog.New(slog.DiscardHandler)}})
	w.addUser("alice", true)
	var sb strings.Builder
	sb.WriteString("From: Carol <carol@pass.example>\r\nTo: alice@example.test\r\nSubject: benchmark\r\nMessage-ID: <b@pass.example>\r\n\r\n")
	for i := 0; sb.Len() < 10<<10-80; i++ {
		fmt.Fprintf(&sb, "line %05d: the quick brown fox jumps over the lazy dog, again and again.\r\n", i)
	}
	msg := sb.String()
	c, err := smtp.Dial(w.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.example"); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if err := sendOn(c, "carol@pass.example", []string{"alice@example.test"}, msg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
