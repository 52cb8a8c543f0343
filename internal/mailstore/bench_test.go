package mailstore

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/pkg/seal/sealtest"
)

// openBench is openLocal for a benchmark.
func openBench(b *testing.B) *Store {
	b.Helper()
	k := sealtest.Keys(b)
	st, err := localstore.Open(filepath.Join(b.TempDir(), "s.db"), k)
	if err != nil {
		b.Fatal(err)
	}
	ms, err := Open(docsync.New(st, nil, k, "u@example.test", nil), st, k, subjectIndexer, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ms.Close(); st.Close() })
	return ms
}

// benchMsg is a message of about 10 KB, different for each n (a blob is
// stored once per content).
func benchMsg(n int) []byte {
	var buf bytes.Buffer
	buf.WriteString("From: a@example.test\r\nTo: b@example.test\r\nSubject: message ")
	buf.WriteString(time.Duration(n).String())
	buf.WriteString("\r\n\r\n")
	line := []byte("The quick brown fox jumps over the lazy dog, again and again and again.\r\n")
	for buf.Len() < 10<<10 {
		buf.Write(line)
	}
	return buf.Bytes()
}

// BenchmarkAppend: APPEND of 10 KB messages, one after the other (what
// one client does) and from 4 appenders at once (concurrent clients, or
// incoming mail beside a client). Each append is durable when it returns.
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	b.Run("sequential", func(b *testing.B) {
		ms := openBench(b)
		b.SetBytes(10 << 10)
		n := 0
		for b.Loop() {
			n++
			if _, _, err := ms.Append(ctx, "INBOX", benchMsg(n), []string{`\Seen`}, time.Time{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("concurrent4", func(b *testing.B) {
		ms := openBench(b)
		b.SetBytes(10 << 10)
		var mu sync.Mutex
		n := 0
		next := func() int {
			mu.Lock()
			defer mu.Unlock()
			n++
			return n
		}
		b.SetParallelism(2) // 2 × GOMAXPROCS(2) = 4 appenders
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, _, err := ms.Append(ctx, "INBOX", benchMsg(next()), nil, time.Time{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("batch100", func(b *testing.B) {
		ms := openBench(b)
		b.SetBytes(100 * 10 << 10)
		n := 0
		for b.Loop() {
			batch := make([]NewMessage, 100)
			for i := range batch {
				n++
				batch[i] = NewMessage{Raw: benchMsg(n)}
			}
			if _, err := ms.AppendBatch(ctx, "INBOX", batch); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// fillIndex puts n messages in mbox's index (not their documents: the
// index alone is what describing the mailbox and indexing one more
// message read), in batches of 10,000; every other one is \Seen.
func fillIndex(b *testing.B, ms *Store, mbox string, n int) {
	b.Helper()
	for done := 0; done < n; {
		batch := make([]*pending, 0, min(10000, n-done))
		for range cap(batch) {
			done++
			var flags []string
			if done%2 == 0 {
				flags = []string{`\Seen`}
			}
			batch = append(batch, &pending{id: fmt.Sprintf("filler%d", done), md: messageDoc{Type: typeMessage, Mbox: mbox, Blob: "b", Size: 10 << 10, Date: time.Now(), Flags: flags}})
		}
		ms.mu.Lock()
		ms.addLocked(batch)
		ms.mu.Unlock()
		if batch[0].err != nil {
			b.Fatal(batch[0].err)
		}
	}
}

// BenchmarkLargeMailbox: with 100,000 messages in INBOX, describing it
// (SELECT, STATUS) and appending to it cost what they cost in an empty
// one.
func BenchmarkLargeMailbox(b *testing.B) {
	ms := openBench(b)
	fillIndex(b, ms, "INBOX", 100000)
	b.Run("Mailbox", func(b *testing.B) {
		for b.Loop() {
			if mi, err := ms.Mailbox("INBOX"); err != nil || mi.Messages != 100000 || mi.Unseen != 50000 {
				b.Fatal(mi, err)
			}
		}
	})
	b.Run("Append", func(b *testing.B) {
		n := 0
		for b.Loop() {
			n++
			if _, _, err := ms.Append(context.Background(), "INBOX", benchMsg(n), nil, time.Time{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
