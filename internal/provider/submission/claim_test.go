package submission_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
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

// TestClaimOfADeadInstanceLapses: an item claimed by an instance that
// died mid-send (its claim is taken here straight from the store, and
// nothing ever finishes it) is left alone until the claim's lease ends,
// then a live instance's worker sends it, once.
func TestClaimOfADeadInstanceLapses(t *testing.T) {
	r := startRemote(t, "127.0.0.1:0", nil)
	var mu sync.Mutex
	var rcptAt []time.Time
	r.mu.Lock()
	r.rcptErr = func(string) error {
		mu.Lock()
		rcptAt = append(rcptAt, time.Now())
		mu.Unlock()
		return nil
	}
	r.mu.Unlock()
	p := startProvider(t, testenv.Options{})
	ctx := context.Background()
	if err := p.Store.CreateUser(ctx, &storage.User{Login: "alice", SRPSalt: []byte("salt"), SRPVerifier: []byte("verifier"), Created: time.Now()}, ""); err != nil {
		t.Fatal(err)
	}
	it := &storage.OutboundItem{Login: "alice", From: "alice@" + domain, Created: time.Now().UTC(), NextAttempt: time.Now().UTC(),
		Message: []byte(message("alice", "dave@"+remote, "claimed-by-the-dead"))}
	it.Recipients = []storage.OutboundRecipient{{Address: "dave@" + remote}}
	if err := p.Store.PutOutbound(ctx, it); err != nil {
		t.Fatal(err)
	}
	claimed, err := p.Store.ClaimDueOutbound(ctx, time.Now(), 10, 2*time.Second)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("the dead instance's claim: %v, %v", claimed, err)
	}
	leaseEnd := claimed[0].NextAttempt

	w := newWorld(t, worldOptions{cfg: submission.Config{Port: r.port}, provider: p})
	testenv.Eventually(t, time.Minute, "delivery after the lease", func() bool { return len(r.received()) == 1 })
	testenv.Eventually(t, time.Minute, "an empty queue", func() bool { return len(w.queue()) == 0 })
	w.stop()
	mu.Lock()
	defer mu.Unlock()
	if len(rcptAt) != 1 || len(r.received()) != 1 {
		t.Fatalf("%d RCPTs, %d messages; want one each", len(rcptAt), len(r.received()))
	}
	if rcptAt[0].Before(leaseEnd) {
		t.Errorf("sent at %s, before the dead instance's lease ended at %s", rcptAt[0].Format(time.RFC3339Nano), leaseEnd.Format(time.RFC3339Nano))
	}
}
