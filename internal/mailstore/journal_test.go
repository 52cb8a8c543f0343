package mailstore

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/store"
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

func openLocal(t *testing.T, path string, k *seal.Keys, idx Indexer) (*store.Store, *Store) {
	t.Helper()
	st, err := store.Open(path, k)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := Open(docsync.New(st, nil, k, "u@example.test", nil), st, k, idx, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st, ms
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
	st.Close()

	st, ms = openLocal(t, path, k, nil)
	defer st.Close()
	defer ms.Close()
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
	var ms *Store
	fired := false
	idx := func(raw []byte) ([]byte, error) {
		if !fired && ms != nil {
			fired = true
			moveDoc(t, ms, id, "Archive") // as a pull would, meanwhile
		}
		return []byte("meta"), nil
	}
	st, ms := openLocal(t, path, k, idx)
	raw := []byte("Subject: a\r\n\r\nx")
	body, _ := json.Marshal(messageDoc{Type: typeMessage, Mbox: "INBOX", Blob: ms.docs.BlobID(raw), Size: int64(len(raw)), Date: time.Now().UTC().Truncate(time.Second)})
	if err := ms.docs.PutBlobsAndDocs([][]byte{raw}, []docsync.Doc{{ID: id, Body: body}}); err != nil {
		t.Fatal(err)
	}
	ms.drain(context.Background())
	if !fired {
		t.Fatal("the indexer did not run")
	}
	if got := mailboxOf(ms, id); got != "Archive" {
		t.Fatalf("after the drain the message is in %s, want Archive", got)
	}
	if changes, _ := ms.docs.Changed(0); len(changes) != 0 {
		t.Fatalf("left listed: %v", changes)
	}
	st.Close()
	st, ms = openLocal(t, path, k, idx)
	defer st.Close()
	defer ms.Close()
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
	st, ms := openLocal(t, path, k, nil)
	defer st.Close()
	defer ms.Close()
	raw := []byte("Subject: later\r\n\r\nbody")
	const id = "blobcomeslater"
	body, _ := json.Marshal(messageDoc{Type: typeMessage, Mbox: "INBOX", Blob: ms.docs.BlobID(raw), Size: int64(len(raw)), Date: time.Now().UTC().Truncate(time.Second)})
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
