package imapd

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/mailstore"
)

// hubOf is the hub of the test account's mailbox name (nil when none).
func hubOf(e *testEnv, name string) *hub {
	e.srv.mu.Lock()
	defer e.srv.mu.Unlock()
	for _, a := range e.srv.accounts {
		a.mu.Lock()
		h := a.hubs[name]
		a.mu.Unlock()
		if h != nil {
			return h
		}
	}
	return nil
}

// rawFetchAll answers FETCH 1:* item as one string per message.
func rawFetchAll(t *testing.T, rc *rawConn, item string) []string {
	t.Helper()
	lines, st := rc.cmd("f", "FETCH 1:* ("+item+")")
	if !strings.HasPrefix(st, "f OK") {
		t.Fatalf("%s: %s", item, st)
	}
	var out []string
	for _, l := range lines {
		if _, rest, ok := strings.Cut(l, " FETCH "); ok {
			out = append(out, rest)
		}
	}
	return out
}

// TestBodyStructureWireCache: over the real mail store, FETCH
// BODYSTRUCTURE keeps the wire forms it read in the hub's cache and
// answers the same from it, also to a UTF8=ACCEPT session (which gets
// the non-ASCII structure as UTF-8: that one is never cached); an
// expunge drops the message's form, and the account's budget comes back
// whole when the mailbox is no longer selected.
func TestBodyStructureWireCache(t *testing.T) {
	ms := realStore(t)
	samples := append(sampleMessages(), crlf("Content-Type: text/plain\nContent-Description: caf\xc3\xa9\n\nx"))
	batch := make([]mailstore.NewMessage, 0, len(samples))
	withWire := 0
	for _, raw := range samples {
		batch = append(batch, mailstore.NewMessage{Raw: raw, Date: time.Now()})
		if m, _ := decodeMeta(must(Indexer(raw)), metaWire); m.BodyStructureWire != nil {
			withWire++
		}
	}
	if _, err := ms.AppendBatch(context.Background(), "INBOX", batch); err != nil {
		t.Fatal(err)
	}
	e := startServerWithStore(t, ms)
	plain := e.raw()
	plain.cmd("l", `LOGIN "`+testUser+`" "`+testToken+`"`)
	plain.cmd("s", "SELECT INBOX")
	h := hubOf(e, "INBOX")
	if h == nil || h.wires.len() != 0 {
		t.Fatal("no hub, or a cache before any FETCH")
	}
	first := rawFetchAll(t, plain, "BODYSTRUCTURE")
	if n := h.wires.len(); n != withWire || withWire < 8 {
		t.Fatalf("%d forms cached, want %d", n, withWire)
	}
	if again := rawFetchAll(t, plain, "BODYSTRUCTURE"); strings.Join(again, "\n") != strings.Join(first, "\n") {
		t.Errorf("from the cache:\n%s\nfirst:\n%s", strings.Join(again, "\n"), strings.Join(first, "\n"))
	}
	if last := first[len(first)-1]; strings.Contains(last, "café") || !strings.Contains(last, "=?") {
		t.Errorf("without UTF8=ACCEPT: %s", last)
	}

	utf := e.raw()
	utf.cmd("l", `LOGIN "`+testUser+`" "`+testToken+`"`)
	if _, st := utf.cmd("e", "ENABLE UTF8=ACCEPT"); !strings.HasPrefix(st, "e OK") {
		t.Fatal(st)
	}
	utf.cmd("s", "EXAMINE INBOX")
	got := rawFetchAll(t, utf, "BODYSTRUCTURE")
	if len(got) != len(first) {
		t.Fatalf("%d answers, want %d", len(got), len(first))
	}
	for i := range len(got) - 1 {
		// Structures in ASCII are the same for both sessions (those with
		// UTF-8 are written to each its way, never from the cache).
		if ascii(got[i]) && got[i] != first[i] {
			t.Errorf("message %d with UTF8=ACCEPT: %s, without: %s", i+1, got[i], first[i])
		}
	}
	if last := got[len(got)-1]; !strings.Contains(last, "café") {
		t.Errorf("with UTF8=ACCEPT: %s", last)
	}

	// Expunging message 1 (it has a wire form) drops it.
	if !strings.Contains(first[0], "BODYSTRUCTURE (") {
		t.Fatalf("message 1: %s", first[0])
	}
	if _, st := plain.cmd("x", `STORE 1 +FLAGS (\Deleted)`); !strings.HasPrefix(st, "x OK") {
		t.Fatal(st)
	}
	if _, st := plain.cmd("y", "EXPUNGE"); !strings.HasPrefix(st, "y OK") {
		t.Fatal(st)
	}
	if n := h.wires.len(); n != withWire-1 {
		t.Errorf("%d forms cached after the expunge, want %d", n, withWire-1)
	}

	plain.cmd("z", "LOGOUT")
	utf.cmd("z", "LOGOUT")
	budget := h.acct.wireBudget
	for deadline := time.Now().Add(10 * time.Second); hubOf(e, "INBOX") != nil || budget.Load() != wireBudget; {
		if time.Now().After(deadline) {
			t.Fatalf("budget %d after the hub ended, want %d", budget.Load(), wireBudget)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWireCacheBudget: a form that would overspend the account's budget
// is not kept, and what a hub releases another can use.
func TestWireCacheBudget(t *testing.T) {
	budget := newWireBudget()
	budget.Store(2 * (100 + wireEntryCost))
	a, b := wireCache{budget: budget}, wireCache{budget: budget}
	form := []byte(strings.Repeat("x", 100))
	a.put("1", form)
	b.put("2", form)
	b.put("3", form)
	if a.get("1") == nil || b.get("2") == nil || b.get("3") != nil || budget.Load() != 0 {
		t.Fatalf("kept %v %v %v, budget left %d", a.get("1") != nil, b.get("2") != nil, b.get("3") != nil, budget.Load())
	}
	a.release()
	b.put("3", form)
	if b.get("3") == nil || a.len() != 0 {
		t.Fatal("released budget not reused")
	}
	b.drop([]string{"2", "3"})
	if b.len() != 0 || budget.Load() != 2*(100+wireEntryCost) {
		t.Fatalf("after drop: %d kept, budget %d", b.len(), budget.Load())
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func ascii(s string) bool {
	for i := range len(s) {
		if s[i] > '~' {
			return false
		}
	}
	return true
}
