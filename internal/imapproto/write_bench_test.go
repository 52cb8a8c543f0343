package imapproto

import (
	"bufio"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// benchMessages is how many FETCH responses one benchmark op writes: a
// UID FETCH 1:* over a mailbox of 100,000 messages.
const benchMessages = 100000

// benchFetch writes benchMessages FETCH responses with write, the way a
// session does (one FetchResponseWriter per message), into a buffered
// writer over io.Discard.
func benchFetch(b *testing.B, opts *FetchOptions, write func(w *FetchResponseWriter, i int)) {
	e := newEncoder(bufio.NewWriterSize(io.Discard, 64<<10))
	fw := &FetchWriter{opts: opts}
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		for i := range benchMessages {
			fw.rw = FetchResponseWriter{w: fw, e: e}
			e.startFetch(uint32(i + 1))
			write(&fw.rw, i)
			if err := fw.rw.Close(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchMessages, "ns/msg")
	// The process's CPU time per message: steadier than the wall clock
	// on a machine shared with other work.
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N)/benchMessages, "cpu-ns/msg")
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkFetchFlags100k(b *testing.B) {
	flags := [][]imap.Flag{{imap.FlagSeen}, {imap.FlagSeen, imap.FlagAnswered, "$Forwarded"}, nil}
	benchFetch(b, &FetchOptions{}, func(w *FetchResponseWriter, i int) {
		w.WriteUID(imap.UID(i + 1))
		w.WriteFlags(flags[i%len(flags)])
	})
}

func BenchmarkFetchEnvelope100k(b *testing.B) {
	env := &imap.Envelope{
		Date:      time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
		Subject:   "Re: the quarterly report, with the numbers we talked about",
		From:      []imap.Address{{Name: "Alice Example", Mailbox: "alice", Host: "example.org"}},
		To:        []imap.Address{{Name: "Bob", Mailbox: "bob", Host: "example.net"}, {Mailbox: "carol", Host: "example.com"}},
		Cc:        []imap.Address{{Name: "Dave", Mailbox: "dave", Host: "example.com"}},
		InReplyTo: []string{"20240505.1234@example.net"},
		MessageID: "20240506.5678@example.org",
	}
	benchFetch(b, &FetchOptions{}, func(w *FetchResponseWriter, i int) {
		w.WriteUID(imap.UID(i + 1))
		w.WriteEnvelope(env)
	})
}

func BenchmarkFetchBodyStructure100k(b *testing.B) {
	bs := testBodyStructure()
	opts := &FetchOptions{FetchOptions: imap.FetchOptions{BodyStructure: &imap.FetchItemBodyStructure{Extended: true}}}
	benchFetch(b, opts, func(w *FetchResponseWriter, i int) {
		w.WriteUID(imap.UID(i + 1))
		w.WriteBodyStructure(bs)
	})
}
