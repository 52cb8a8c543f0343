package submission_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider/submission"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// TestTwoQueuesSendOnce: two queue workers on one store (two leapd
// instances: docs/storage.md, "Several instances") each claim what they
// send, so every message submitted through either leaves exactly once.
// The remote holds each RCPT a moment, which widens the window in which
// two workers that only listed the queue would both send an item (the
// test does not depend on the time: with claims, no window exists).
func TestTwoQueuesSendOnce(t *testing.T) {
	r := startRemote(t, "127.0.0.1:0", nil)
	r.mu.Lock()
	r.rcptErr = func(string) error {
		<-time.After(100 * time.Millisecond)
		return nil
	}
	r.mu.Unlock()
	w1 := newWorld(t, worldOptions{cfg: submission.Config{Port: r.port}})
	w2 := newWorld(t, worldOptions{cfg: submission.Config{Port: r.port}, provider: w1.p})
	w1.addUser("alice", true)
	w2.tokens["alice"] = w1.tokens["alice"]

	const n = 12
	for i := range n {
		w := w1
		if i%2 == 1 {
			w = w2
		}
		subject := fmt.Sprintf("claim-%02d", i)
		if err := w.submit("alice", "alice@"+domain, []string{"dave@" + remote}, message("alice", "dave@"+remote, subject)); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, time.Minute, "an empty queue", func() bool { return len(w1.queue()) == 0 })
	// Both workers stopped: whatever either had under way has ended.
	w2.stop()
	w1.stop()
	seen := map[string]int{}
	for _, m := range r.received() {
		for i := range n {
			if bytes.Contains(m.data, fmt.Appendf(nil, "Message-ID: <claim-%02d@", i)) {
				seen[fmt.Sprint(i)]++
			}
		}
	}
	for i := range n {
		if c := seen[fmt.Sprint(i)]; c != 1 {
			t.Errorf("message %d reached the remote %d times, want once", i, c)
		}
	}
	if got := len(r.received()); got != n {
		t.Errorf("the remote got %d messages, want %d", got, n)
	}
}
