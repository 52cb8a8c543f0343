package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemo: `bitmask-demo` (what `make run` starts) brings up the
// provider and two accounts and prints what a mail client needs; the
// next run reuses them.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("derives real Argon2id keys")
	}
	dir := t.TempDir()
	args := []string{"-data", dir, "-provider", "127.0.0.1:0", "-mx", "127.0.0.1:0", "-submission", "127.0.0.1:0",
		"-control", "127.0.0.1:0", "-imap", "127.0.0.1:0", "-smtp", "127.0.0.1:0"}
	var tokens []string
	for run := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		out := &syncBuf{}
		done := make(chan error, 1)
		go func() { done <- demo(ctx, args, out) }()
		deadline := time.Now().Add(90 * time.Second)
		for !strings.Contains(out.String(), "Ctrl-C stops everything") {
			if time.Now().After(deadline) {
				cancel()
				t.Fatalf("run %d: the demo did not come up:\n%s", run, out.String())
			}
			select {
			case err := <-done:
				t.Fatalf("run %d: demo ended: %v\n%s", run, err, out.String())
			case <-time.After(50 * time.Millisecond):
			}
		}
		s := out.String()
		for _, want := range []string{"alice@bitmask.test", "bob@bitmask.test", "IMAP server", "SMTP server", "local token"} {
			if !strings.Contains(s, want) {
				t.Fatalf("run %d: output lacks %q:\n%s", run, want, s)
			}
		}
		if run == 0 && !strings.Contains(s, "creating demo account") {
			t.Fatalf("first run did not create the accounts:\n%s", s)
		}
		if run == 1 && strings.Contains(s, "creating demo account") {
			t.Fatalf("second run created the accounts again:\n%s", s)
		}
		for _, l := range strings.Split(s, "\n") {
			if _, tok, ok := strings.Cut(l, "password  "); ok {
				tokens = append(tokens, strings.Fields(tok)[0])
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
	}
	if len(tokens) != 4 || tokens[0] != tokens[2] || tokens[1] != tokens[3] {
		t.Fatalf("local tokens changed between runs: %v", tokens)
	}
}
