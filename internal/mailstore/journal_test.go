package mailstore

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/pkg/seal/sealtest"
)

// How Open catches up with docsync's list of changes: what a crash or a
// stop cut short, and stores from before the list.

// TestMoveCutShortIsFinishedAtStart: a move whose document is committed
// and whose old index entry is gone, but which died before indexing the
// message in its new mailbox, is finished by the next start.
func TestMoveCutShortIsFinishedAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	k := sealtest.Keys(t)
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

// TestUpgradeReconcileKeepsWhatFailed: on the first start of a store from
// before the change list, a document that cannot be applied yet (its blob
// is missing) is not forgotten: the next start reconciles again and
// indexes it.
func TestUpgradeReconcileKeepsWhatFailed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	k := sealtest.Keys(t)
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

// TestReconcileIndexesUnlistedDocuments: a document that reached the
// file without being listed (as when something other than this program
// wrote it) is not seen by a start that follows the list; after
// Reconcile, the next start compares every document with the index,
// indexes it, and marks the index as following the list again.
func TestReconcileIndexesUnlistedDocuments(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	k := sealtest.Keys(t)
	st, ms := openLocal(t, path, k, nil)
	const id = "writtenbyanother"
	raw, body := messageDocFor(ms, []byte("Subject: unlisted\r\n\r\nbody"), "Archive")
	ms.Close()
	if err := ms.docs.PutBlobsAndDocs([][]byte{raw}, []docsync.Doc{{ID: id, Body: body}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Update(func(tx *localstore.Tx) error {
		return docsync.Taken(tx, docsync.Change{ID: id, Stamp: 1 << 62})
	}); err != nil {
		t.Fatal(err)
	}
	st, ms = reopen(t, st, ms, path, k, nil)
	if got := mailboxOf(ms, id); got != "(not indexed)" {
		t.Fatalf("an unlisted document was applied without Reconcile: %s", got)
	}
	ms.Close()
	if err := Reconcile(st); err != nil {
		t.Fatal(err)
	}
	_, ms = reopen(t, st, ms, path, k, nil)
	if got := mailboxOf(ms, id); got != "Archive" {
		t.Fatalf("after Reconcile and a start the message is in %s, want Archive", got)
	}
	if journaled, err := ms.journaled(); err != nil || !journaled {
		t.Fatalf("the index does not follow the list again: %v %v", journaled, err)
	}
}
