package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/tray/trayhost"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// In a desktop session bitmaskd shows its tray icon, and the icon's Quit
// ends bitmaskd cleanly (run returns nil).
func TestQuitFromTheTray(t *testing.T) {
	bus := trayhost.StartBus(t)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", bus.Addr)
	t.Setenv("DISPLAY", ":99") // nothing draws on it: the tray speaks D-Bus
	host := trayhost.New(t, bus.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-data", t.TempDir(), "-control", "127.0.0.1:0", "-imap", "", "-smtp", ""}, &out)
	}()
	item, err := host.WaitItem(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Find Quit among the entries (by id: see trayhost.Entries).
	var ids []int32
	for id := range int32(64) {
		ids = append(ids, id+1)
	}
	var quit int32
	if err := item.WaitFor(ctx, "the menu", func() bool {
		es, err := item.Entries(ids)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.Label == "Quit Bitmask" {
				quit = e.ID
			}
		}
		return quit != 0
	}); err != nil {
		t.Fatal(err)
	}
	if err := item.Click(quit); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("bitmaskd ended with %v", err)
		}
	case <-ctx.Done():
		t.Fatal("bitmaskd did not end after Quit")
	}
	if !strings.Contains(out.String(), "bitmaskd: tray icon on") {
		t.Errorf("output: %q", out.String())
	}
}
