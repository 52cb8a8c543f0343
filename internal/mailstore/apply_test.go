package mailstore

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/pkg/seal/sealtest"
)

// How the worker applies docsync's listed changes: races with local
// writes and pulls, and changes that cannot be applied yet.

// TestChangeDuringApplyIsNotLost: a newer revision that lands while the
// worker applies an older one (here: while the indexer runs) is applied
// too, not taken off the list with the older one.
func TestChangeDuringApplyIsNotLost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	k := sealtest.Keys(t)
	const id = "raceddoc"
	var target atomic.Pointer[Store]
	var fired atomic.Bool
	idx := func(raw []byte) ([]byte, error) {
		if ms := target.Load(); ms != nil && !fired.Swap(true) {
			moveDoc(t, ms, id, "Archive") // as a pull would, meanwhile
		}
		return []byte("meta"), nil
	}
	st, ms := openLocal(t, path, k, idx)
	target.Store(ms)
	raw, body := messageDocFor(ms, []byte("Subject: a\r\n\r\nx"), "INBOX")
	if err := ms.docs.PutBlobsAndDocs([][]byte{raw}, []docsync.Doc{{ID: id, Body: body}}); err != nil {
		t.Fatal(err)
	}
	ms.drain(context.Background())
	if !fired.Load() {
		t.Fatal("the indexer did not run")
	}
	if got := mailboxOf(ms, id); got != "Archive" {
		t.Fatalf("after the drain the message is in %s, want Archive", got)
	}
	if changes, _ := ms.docs.Changed(0); len(changes) != 0 {
		t.Fatalf("left listed: %v", changes)
	}
	_, ms = reopen(t, st, ms, path, k, idx)
	if got := mailboxOf(ms, id); got != "Archive" {
		t.Fatalf("after a restart the message is in %s, want Archive", got)
	}
}

// TestUnappliableChangeStaysListed: a message whose content cannot be
// had yet (its blob is neither here nor reachable) stays listed, waits
// before it is tried again, and is indexed once the blob is there.
func TestUnappliableChangeStaysListed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	k := sealtest.Keys(t)
	_, ms := openLocal(t, path, k, nil)
	const id = "blobcomeslater"
	raw, body := messageDocFor(ms, []byte("Subject: later\r\n\r\nbody"), "INBOX")
	if err := ms.docs.Put(id, body); err != nil { // as a pull of the document alone would
		t.Fatal(err)
	}
	ms.drain(context.Background())
	if got := mailboxOf(ms, id); got != "(not indexed)" {
		t.Fatalf("indexed without its content: %s", got)
	}
	listed := func() bool {
		changes, _ := ms.docs.Changed(0)
		for _, c := range changes {
			if c.ID == id {
				return true
			}
		}
		return false
	}
	if !listed() {
		t.Fatal("a change that failed was taken off the list")
	}
	ms.drainMu.Lock()
	r := ms.failed[id]
	ms.drainMu.Unlock()
	if r == nil || r.wait != retryFirst {
		t.Fatalf("retry state: %+v", r)
	}
	// Not tried again before its time, even once the blob is there.
	if _, err := ms.docs.PutBlob(raw); err != nil {
		t.Fatal(err)
	}
	ms.drain(context.Background())
	if got := mailboxOf(ms, id); got != "(not indexed)" {
		t.Fatalf("retried early: %s", got)
	}
	ms.drainMu.Lock()
	r.at = time.Now().Add(-time.Second)
	ms.drainMu.Unlock()
	ms.drain(context.Background())
	if got := mailboxOf(ms, id); got != "INBOX" || listed() {
		t.Fatalf("after the retry: in %s, listed %v", got, listed())
	}
}

// TestFlagUpdateAfterExpungeStaysGone: the worker's flag update for a
// message that a client expunged meanwhile does not write its entry back
// (it would come back at the next start).
func TestFlagUpdateAfterExpungeStaysGone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	k := sealtest.Keys(t)
	ctx := context.Background()
	st, ms := openLocal(t, path, k, nil)
	m, _, err := ms.Append(ctx, "INBOX", []byte("Subject: a\r\n\r\nx"), nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	ms.Close() // the worker's steps are played by hand
	// A pull sets \Seen on the document; the worker reads the message...
	err = ms.docs.Modify([]string{m.ID}, func(_ string, b []byte) ([]byte, bool, bool, error) {
		var md messageDoc
		if err := json.Unmarshal(b, &md); err != nil {
			return nil, false, false, err
		}
		md.Flags = []string{`\Seen`}
		nb, err := json.Marshal(md)
		return nb, false, false, err
	})
	if err != nil {
		t.Fatal(err)
	}
	ms.mu.Lock()
	cur := ms.byID[m.ID]
	ms.mu.Unlock()
	if _, err := ms.StoreFlags(ctx, "INBOX", []uint32{m.UID}, FlagsAdd, []string{`\Deleted`}); err != nil {
		t.Fatal(err)
	}
	if out, err := ms.Expunge(ctx, "INBOX", nil); err != nil || len(out) != 1 {
		t.Fatalf("expunge: %v %v", out, err)
	}
	if err := ms.setFlagsIndex(nil, cur, []string{`\Seen`}); err != nil { // ...and now writes
		t.Fatal(err)
	}
	ms.drain(ctx)
	_, ms = reopen(t, st, ms, path, k, nil)
	if got, _ := ms.Messages("INBOX"); len(got) != 0 {
		t.Fatalf("an expunged message came back: %+v", got)
	}
}

// TestStaleApplyDoesNotUndoMoves: the worker applying what it read
// before a client's MOVE does not move the message back: every UID a
// MOVE reported stays valid.
func TestStaleApplyDoesNotUndoMoves(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	k := sealtest.Keys(t)
	ctx := context.Background()
	_, ms := openLocal(t, path, k, func([]byte) ([]byte, error) { return []byte("m"), nil })
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a worker that never rests
		defer wg.Done()
		for !stop.Load() {
			ms.drain(ctx)
		}
	}()
	type moved struct {
		id  string
		uid uint32
	}
	var all []moved
	for range 150 {
		m, _, err := ms.Append(ctx, "INBOX", []byte("Subject: a\r\n\r\nx"), nil, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		_, dst, _, err := ms.Move(ctx, "INBOX", []uint32{m.UID}, "Archive")
		if err != nil || len(dst) != 1 {
			t.Fatalf("move: %v %v", dst, err)
		}
		all = append(all, moved{m.ID, dst[0]})
	}
	stop.Store(true)
	wg.Wait()
	ms.drain(ctx)
	got, _ := ms.Messages("Archive")
	for _, mv := range all {
		if !slices.ContainsFunc(got, func(x Message) bool { return x.ID == mv.id && x.UID == mv.uid }) {
			t.Fatalf("message %s is no longer Archive UID %d", mv.id, mv.uid)
		}
	}
	if inbox, _ := ms.Messages("INBOX"); len(inbox) != 0 {
		t.Fatalf("%d messages back in INBOX", len(inbox))
	}
}
