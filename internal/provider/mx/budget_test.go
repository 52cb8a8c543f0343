package mx_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider/mx"
	"github.com/bitmask-go/bitmask/internal/provider/smtpserver"
)

// TestDataBeyondTheMemoryBudget: with the MX's 1 MiB memory budget all
// taken (by a message the test holds), four large DATA at once are each
// answered 452 4.3.1 (temporary) after their bodies went to disk, none
// is stored, and the memory held under the budget never goes past it;
// once the budget is free, the same message is taken, holding its
// plaintext and a ciphertext's worth (twice its size, within the
// budget), and everything is given back after.
func TestDataBeyondTheMemoryBudget(t *testing.T) {
	const budget = 1 << 20
	var sp *smtpserver.Spool
	var atDeliver atomic.Int64 // memory under the budget as a copy is stored
	w := newWorld(t, worldOptions{wrap: func(p mx.Provider) mx.Provider {
		return &deliverHook{Provider: p, before: func() { m, _ := sp.InUse(); atDeliver.Store(m) }}
	}, cfg: mx.Config{
		MaxSize: 4 << 20,
		Spool:   smtpserver.SpoolConfig{Dir: t.TempDir(), InMemory: 64 << 10, MemoryBudget: budget, Wait: 200 * time.Millisecond},
	}})
	w.addUser("alice", true)
	sp = w.mx.Spool()
	hold, err := sp.Receive(strings.NewReader(strings.Repeat("h", budget)), 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Bytes(context.Background()); err != nil {
		t.Fatal(err)
	}
	if m, _ := sp.InUse(); m != budget {
		t.Fatalf("the test's hold: %d in use, want the budget %d", m, budget)
	}

	msg := []byte("Subject: big\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n", (300<<10)/64))
	const n = 4
	type reply struct {
		code int
		msg  string
	}
	replies := make(chan reply, n)
	var wg sync.WaitGroup
	for range n {
		r := dialRaw(t, "tcp", w.addr)
		r.cmd(250, "EHLO client.example")
		r.cmd(250, "MAIL FROM:<x@pass.example>")
		r.cmd(250, "RCPT TO:<alice@example.test>")
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, m, _ := r.data(msg)
			replies <- reply{code, m}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		default:
		}
		if m, _ := sp.InUse(); m > budget {
			t.Fatalf("memory held under the budget: %d, over %d", m, budget)
		}
		time.Sleep(time.Millisecond)
	}
	close(replies)
	for r := range replies {
		if r.code != 452 || !strings.HasPrefix(r.msg, "4.3.1 ") {
			t.Errorf("DATA with the budget spent: %d %q, want 452 4.3.1", r.code, r.msg)
		}
	}
	if its := w.items("alice"); len(its) != 0 {
		t.Errorf("%d stored with the budget spent, want none", len(its))
	}

	hold.Close()
	if err := w.send("x@pass.example", []string{"alice@example.test"}, string(msg)); err != nil {
		t.Fatalf("with the budget free: %v", err)
	}
	if its := w.items("alice"); len(its) != 1 {
		t.Errorf("%d stored, want 1", len(its))
	}
	if got, want := atDeliver.Load(), 2*int64(len(msg)); got < want {
		t.Errorf("memory held while the copy was stored: %d, want at least %d (the message and its ciphertext)", got, want)
	}
	if m, d := sp.InUse(); m != 0 || d != 0 {
		t.Errorf("spool in use after: memory %d, disk %d", m, d)
	}
}

// deliverHook is the real provider, with before run as each copy is
// delivered.
type deliverHook struct {
	mx.Provider
	before func()
}

func (d *deliverHook) Deliver(ctx context.Context, login string, ct []byte) error {
	d.before()
	return d.Provider.Deliver(ctx, login, ct)
}
