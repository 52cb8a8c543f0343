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
	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// These tests run the mail store on a local document engine (no
// provider): what they check is how the index follows docsync's list of
// changes across crashes and races.

func localKeys(t *testing.T) *seal.Keys {
	t.Helper()
	secret, err := seal.NewStorageSecret()
	if err != nil {
		t.Fatal(err)
	}
	k, err := seal.DeriveKeys(secret)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func openLocal(t *testing.T, path string, k *seal.Keys, idx Indexer) (*localstore.Store, *Store) {
	t.Helper()
	st, err := localstore.Open(path, k)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := Open(docsync.New(st, nil, k, "u@example.test", nil), st, k, idx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close(); st.Close() })
	return st, ms
}

// reopen closes the mail store and its file, as a stop (or, when the
// caller stopped nothing else first, a crash) would, and opens them again.
func reopen(t *testing.T, st *localstore.Store, ms *Store, path string, k *seal.Keys, idx Indexer) (*localstore.Store, *Store) {
	t.Helper()
	ms.Close()
	st.Close()
	return openLocal(t, path, k, idx)
}

// messageDocFor is the document of a message with content raw in mbox,
// as Append writes it (the blob is not stored).
func messageDocFor(ms *Store, raw []byte, mbox string) ([]byte, []byte) {
	body, _ := json.Marshal(messageDoc{Type: typeMessage, Mbox: mbox, Blob: ms.docs.BlobID(raw), Size: int64(len(raw)), Date: time.Now().UTC().Truncate(time.Second)})
	return raw, body
}

func mailboxOf(ms *Store, id string) string {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if m := ms.byID[id]; m != nil {
		return m.mbox
	}
	return "(not indexed)"
}

func moveDoc(t *testing.T, ms *Store, id, to string) {
	t.Helper()
	err := ms.docs.Modify([]string{id}, func(_ string, b []byte) ([]byte, bool, bool, error) {
		var md messageDoc
		if err := json.Unmarshal(b, &md); err != nil {
			return nil, false, false, err
		}
		md.Mbox = to
		nb, err := json.Marshal(md)
		return nb, false, false, err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMoveCutShortIsFinishedAtStart: a move whose document is committed
// and whose old index entry is gone, but which died before indexing the
// message in its new mailbox, is finished by the next start.
func TestMoveCutShortIsFinishedAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	k := localKeys(t)
	st, ms := openLocal(t, path, k, nil)
	m, _, err := ms.Append(context.Background(), "INBOX", []byte("Subject: a\r\n\r\nx"), nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	ms.mu.Lock()
	cur := ms.byID[m.ID]
	ms.mu.Unlock()
	// What Move does before it indexes the message again, and no more.
	ms.Close()
	moveDoc(t, ms, m.ID, "Archive")
	if err := ms.unindexOrigin(nil, cur); err != nil {
		t.Fatal(err)
	}
	_, ms = reopen(t, st, ms, path, k, nil)
	if got := mailboxOf(ms, m.ID); got != "Archive" {
		t.Fatalf("after the start the message is in %s, want Archive", got)
	}
}

// TestChangeDuringApplyIsNotLost: a newer revision that lands while the
// worker applies an older one (here: while the indexer runs) is applied
// too, not taken off the list with the older one.
func TestChangeDuringApplyIsNotLost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	k := localKeys(t)
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
	k := localKeys(t)
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
	k := localKeys(t)
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
	ch, _ := ms.docs.Changed(0)
	println("changed before restart", len(ch))
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
	k := localKeys(t)
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

// TestUpgradeReconcileKeepsWhatFailed: on the first start of a store from
// before the change list, a document that cannot be applied yet (its blob
// is missing) is not forgotten: the next start reconciles again and
// indexes it.
func TestUpgradeReconcileKeepsWhatFailed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	k := localKeys(t)
	st, ms := openLocal(t, path, k, nil)
	const id = "blobcomeslater"
	raw, body := messageDocFor(ms, []byte("Subject: later\r\n\r\nbody"), "INBOX")
	ms.Close()
	if err := ms.docs.Put(id, body); err != nil {
		t.Fatal(err)
	}
	// As a store indexed before the change list: no marker, and the
	// document not listed.
	err := st.Update(func(tx *localstore.Tx) error {
		if err := tx.Delete(bucketState, "journal"); err != nil {
			return err
		}
		return docsync.Taken(tx, docsync.Change{ID: id, Stamp: 1 << 62})
	})
	if err != nil {
		t.Fatal(err)
	}
	st, ms = reopen(t, st, ms, path, k, nil) // blob still missing
	if got := mailboxOf(ms, id); got != "(not indexed)" {
		t.Fatalf("indexed without its blob: %s", got)
	}
	if _, err := ms.docs.PutBlob(raw); err != nil { // the blob arrives
		t.Fatal(err)
	}
	_, ms = reopen(t, st, ms, path, k, nil)
	if got := mailboxOf(ms, id); got != "INBOX" {
		t.Fatalf("after the next start the message is in %s, want INBOX", got)
	}
}
