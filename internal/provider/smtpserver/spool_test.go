package smtpserver

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// TestSpoolReceive: small messages stay in memory, bigger ones go to a
// 0600 file that Close removes (and that is unlinked at once), a message
// over max is ErrTooBig, and the budget and disk counts go back to 0.
func TestSpoolReceive(t *testing.T) {
	dir := t.TempDir()
	sp := NewSpool(SpoolConfig{Dir: dir, InMemory: 8, MemoryBudget: 64})
	for _, tc := range []struct {
		in     string
		max    int64
		tooBig bool
		disk   bool
	}{
		{"", 3, false, false},
		{"abc", 3, false, false},
		{"abcd", 3, true, false},
		{"1234567", 100, false, false},
		{"12345678", 100, false, true},
		{strings.Repeat("x", 100), 100, false, true},
		{strings.Repeat("x", 101), 100, true, false},
	} {
		b, err := sp.Receive(strings.NewReader(tc.in), tc.max)
		if tc.tooBig {
			if err != ErrTooBig {
				t.Errorf("%d bytes max %d: err %v, want ErrTooBig", len(tc.in), tc.max, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%d bytes: %v", len(tc.in), err)
		}
		if b.OnDisk() != tc.disk || b.Size() != int64(len(tc.in)) {
			t.Errorf("%d bytes: on disk %v size %d", len(tc.in), b.OnDisk(), b.Size())
		}
		if b.OnDisk() {
			fi, err := b.f.Stat()
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("spool file mode %v, %v", fi.Mode(), err)
			}
		}
		got, _ := io.ReadAll(b.Reader())
		mem, err := b.Bytes(context.Background())
		if err != nil || string(got) != tc.in || string(mem) != tc.in {
			t.Errorf("%d bytes: read %q, bytes %q, %v", len(tc.in), got, mem, err)
		}
		b.Close()
	}
	if m, d := sp.InUse(); m != 0 || d != 0 {
		t.Errorf("in use after close: memory %d disk %d", m, d)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("spool dir not empty: %v", ents)
	}
}

// TestSpoolBudget: with the memory budget taken, a new message goes to
// disk from its first byte; Bytes waits for room (and gives up with
// ErrNoRoom after Wait); past the disk limit a message gets ErrNoRoom.
func TestSpoolBudget(t *testing.T) {
	sp := NewSpool(SpoolConfig{Dir: t.TempDir(), InMemory: 16, MemoryBudget: 32, DiskLimit: 100, Wait: 50 * time.Millisecond})
	big := strings.Repeat("y", 40)
	a, err := sp.Receive(strings.NewReader(big), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Bytes(context.Background()); err != nil { // takes the whole budget (40 > 32)
		t.Fatal(err)
	}
	if m, _ := sp.InUse(); m != 32 {
		t.Fatalf("budget in use %d, want 32", m)
	}
	b, err := sp.Receive(strings.NewReader("small"), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if !b.OnDisk() {
		t.Error("budget full: a small message stayed in memory")
	}
	if _, err := b.Bytes(context.Background()); err != ErrNoRoom {
		t.Errorf("Bytes with the budget full: %v, want ErrNoRoom", err)
	}
	// Room comes back: a waiting Bytes gets it.
	done := make(chan error, 1)
	c, err := sp.Receive(strings.NewReader(big), 1000)
	if err != nil {
		t.Fatal(err)
	}
	sp.cfg.Wait = time.Minute
	go func() {
		got, err := c.Bytes(context.Background())
		if err == nil && !bytes.Equal(got, []byte(big)) {
			err = io.ErrUnexpectedEOF
		}
		done <- err
	}()
	a.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Disk: b (5) + c (40) are on disk; 60 more do not fit in 100.
	if _, err := sp.Receive(strings.NewReader(strings.Repeat("z", 60)), 1000); err != ErrNoRoom {
		t.Errorf("over the disk limit: %v, want ErrNoRoom", err)
	}
	b.Close()
	c.Close()
	if m, d := sp.InUse(); m != 0 || d != 0 {
		t.Errorf("in use after close: memory %d disk %d", m, d)
	}
}
