package docsync_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/localstore"
)

// pendingBlobs lists the blobs marked for upload, in the order the
// engine lists them.
func (d *device) pendingBlobs(t *testing.T) []string {
	t.Helper()
	var ids []string
	err := d.st.View(func(tx *localstore.Tx) error {
		return tx.ForEach("blobs-pending", func(id string, _ []byte) error {
			ids = append(ids, id)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// putBlobsAndDoc stores n blobs and a document naming them all.
func putBlobsAndDoc(t *testing.T, d *device, n int) (ids []string, contents map[string]string) {
	t.Helper()
	contents = map[string]string{}
	var blobs [][]byte
	for i := range n {
		c := fmt.Sprintf("the body of message %d", i)
		blobs = append(blobs, []byte(c))
		id := d.BlobID([]byte(c))
		ids = append(ids, id)
		contents[id] = c
	}
	body := fmt.Sprintf(`{"blobs":%q}`, ids)
	if err := d.PutBlobsAndDocs(blobs, []docsync.Doc{{ID: "msgs", Body: []byte(body)}}); err != nil {
		t.Fatal(err)
	}
	return ids, contents
}

// TestInterruptedBlobUploadLosesNothing, after docs/sync.md "Blobs": the
// provider fails one upload in the middle of a push of many blobs sent
// several at once. The blobs it took are marked uploaded, the failed one
// and those not sent stay pending, the document naming them is not
// pushed, and the next sync uploads the rest: the other device then has
// the document and every blob.
func TestInterruptedBlobUploadLosesNothing(t *testing.T) {
	acct := newTestAccount(t, "wren")
	a, b := acct.newDevice(t), acct.newDevice(t)
	all, contents := putBlobsAndDoc(t, a, 60)
	order := a.pendingBlobs(t)
	if len(order) != len(all) {
		t.Fatalf("%d blobs pending, want %d", len(order), len(all))
	}
	// The 21st blob the engine lists fails; the 20 before it were
	// handed out before the failure and finish.
	bad := order[20]
	var mu sync.Mutex
	var failed []string
	a.remote.set(func(s *steeredRemote) {
		s.beforeBlob = func(id string) error {
			if id != bad {
				return nil
			}
			mu.Lock()
			failed = append(failed, id)
			mu.Unlock()
			return errSteered
		}
	})
	if err := a.Sync(context.Background()); !errors.Is(err, errSteered) {
		t.Fatalf("sync with a failing upload: %v, want the upload's error", err)
	}
	a.remote.mu.Lock()
	put := slices.Clone(a.remote.blobsPut)
	a.remote.mu.Unlock()
	pending := a.pendingBlobs(t)
	if !slices.Equal(failed, []string{bad}) {
		t.Fatalf("failed uploads %v, want the one steered", failed)
	}
	if !slices.Contains(pending, bad) {
		t.Fatal("the blob whose upload failed is not pending")
	}
	for _, id := range order[:20] {
		if !slices.Contains(put, id) {
			t.Fatalf("blob %s listed before the failing one was not uploaded", id)
		}
	}
	for _, id := range put {
		if slices.Contains(pending, id) {
			t.Fatalf("blob %s the provider took is still pending", id)
		}
	}
	// Nothing is lost: every blob is at the provider or pending.
	for _, id := range all {
		if !slices.Contains(put, id) && !slices.Contains(pending, id) {
			t.Fatalf("blob %s is neither uploaded nor pending", id)
		}
	}
	if len(put)+len(pending) != len(all) {
		t.Fatalf("%d uploaded + %d pending, want %d", len(put), len(pending), len(all))
	}
	for _, id := range put {
		ct, err := acct.client.Blob(context.Background(), id)
		if err != nil || len(ct) == 0 {
			t.Fatalf("blob %s marked uploaded is not at the provider: %v", id, err)
		}
	}
	b.sync(t)
	if b.body(t, "msgs") != "" {
		t.Fatal("the document went to the provider before all of its blobs")
	}

	a.remote.set(func(s *steeredRemote) { s.beforeBlob = nil })
	a.sync(t)
	if p := a.pendingBlobs(t); len(p) != 0 {
		t.Fatalf("%d blobs still pending after a sync that worked", len(p))
	}
	b.sync(t)
	if b.body(t, "msgs") == "" {
		t.Fatal("the other device has no document after the second sync")
	}
	for _, id := range all {
		got, err := b.Blob(context.Background(), id)
		if err != nil || string(got) != contents[id] {
			t.Fatalf("blob %s on the other device: %q, %v", id, got, err)
		}
	}
}

// TestBlobUploadsOverlap: the push sends several blobs at once. The
// first four uploads wait until four are in flight; an engine that
// uploads one at a time never gets there.
func TestBlobUploadsOverlap(t *testing.T) {
	const want = 4
	acct := newTestAccount(t, "yves")
	a := acct.newDevice(t)
	putBlobsAndDoc(t, a, 20)
	var mu sync.Mutex
	arrived := 0
	all := make(chan struct{})
	a.remote.set(func(s *steeredRemote) {
		s.beforeBlob = func(string) error {
			mu.Lock()
			arrived++
			n := arrived
			if n == want {
				close(all)
			}
			mu.Unlock()
			if n > want {
				return nil
			}
			select {
			case <-all:
				return nil
			case <-time.After(30 * time.Second):
				return fmt.Errorf("only %d uploads in flight at once", n)
			}
		}
	})
	a.sync(t)
	if p := a.pendingBlobs(t); len(p) != 0 {
		t.Fatalf("%d blobs still pending", len(p))
	}
}

// TestDocumentNeverLeavesBeforeItsBlob: a message written during a
// push (an APPEND during a sync), just before the push takes its batch
// of documents, must not have its document pushed before its blob, else
// another device gets the document, a 404 for its content, and shows the
// message only a sync later.
func TestDocumentNeverLeavesBeforeItsBlob(t *testing.T) {
	acct := newTestAccount(t, "yara")
	a := acct.newDevice(t)
	putBlobsAndDoc(t, a, 1)
	late := []byte("the body of a message appended during the sync")
	var once sync.Once
	var missing error
	a.SetTestBeforeCollect(func() {
		once.Do(func() {
			body := fmt.Sprintf(`{"blobs":[%q]}`, a.BlobID(late))
			if err := a.PutBlobsAndDocs([][]byte{late}, []docsync.Doc{{ID: "late", Body: []byte(body)}}); err != nil {
				t.Error(err)
			}
			// The push that carries the late document: its blob
			// must be at the provider before it is sent.
			a.remote.set(func(s *steeredRemote) {
				s.beforePush = func() {
					_, missing = acct.client.Blob(context.Background(), a.BlobID(late))
				}
			})
		})
	})
	a.sync(t)
	if missing != nil {
		t.Fatalf("the document written during the push was sent before its blob: %v", missing)
	}
	if _, err := acct.client.Doc(context.Background(), "late"); err != nil {
		t.Fatalf("the document written during the push was not pushed by it: %v", err)
	}
	if _, err := acct.client.Blob(context.Background(), a.BlobID(late)); err != nil {
		t.Fatalf("the document written during the push is at the provider without its blob: %v", err)
	}
}
