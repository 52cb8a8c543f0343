package smtpserver

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestSpoolBytesWith: BytesWith holds the message and the extra asked
// for in one take (a spooled message: its size plus extra; one in
// memory: the extra on top of what it holds), never more than the whole
// budget, gives the same slice again without taking more, and Close
// gives it all back. With the budget held elsewhere it is ErrNoRoom.
func TestSpoolBytesWith(t *testing.T) {
	sp := NewSpool(SpoolConfig{Dir: t.TempDir(), InMemory: 16, MemoryBudget: 100, Wait: 20 * time.Millisecond})
	ctx := context.Background()

	small, err := sp.Receive(strings.NewReader("tiny"), 1000)
	if err != nil {
		t.Fatal(err)
	}
	held, _ := sp.InUse()
	if _, err := small.BytesWith(ctx, 10); err != nil {
		t.Fatal(err)
	}
	if m, _ := sp.InUse(); m != held+10 {
		t.Errorf("in memory with extra 10: %d, want %d", m, held+10)
	}
	if _, err := small.BytesWith(ctx, 10); err != nil {
		t.Fatal(err)
	}
	if m, _ := sp.InUse(); m != held+10 {
		t.Errorf("asked again: %d, want still %d", m, held+10)
	}
	small.Close()

	big, err := sp.Receive(strings.NewReader(strings.Repeat("b", 40)), 1000)
	if err != nil {
		t.Fatal(err)
	}
	got, err := big.BytesWith(ctx, 40)
	if err != nil || len(got) != 40 {
		t.Fatalf("spooled message: %d bytes, %v", len(got), err)
	}
	if m, _ := sp.InUse(); m != 80 {
		t.Errorf("spooled 40 with extra 40: %d in use, want 80", m)
	}
	// The budget has 20 left: a message that needs more gets ErrNoRoom.
	other, err := sp.Receive(strings.NewReader(strings.Repeat("o", 20)), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.BytesWith(ctx, 20); err != ErrNoRoom {
		t.Errorf("BytesWith past the budget: %v, want ErrNoRoom", err)
	}
	big.Close()
	// Alone, a need over the budget takes the whole budget, no more.
	if _, err := other.BytesWith(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	if m, _ := sp.InUse(); m != 100 {
		t.Errorf("need over the budget: %d in use, want the whole 100", m)
	}
	other.Close()
	if m, d := sp.InUse(); m != 0 || d != 0 {
		t.Errorf("in use after close: memory %d disk %d", m, d)
	}
}
