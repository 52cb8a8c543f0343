package mailstore

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// The package's own tests run the mail store on a local document engine
// (no provider), so they can stop it anywhere, play the worker's steps
// by hand and look at the index. The tests in package mailstore_test run
// it as the daemon opens it, against a real provider.

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

func isListed(ms *Store, id string) bool {
	changes, _ := ms.docs.Changed(0)
	for _, c := range changes {
		if c.ID == id {
			return true
		}
	}
	return false
}
