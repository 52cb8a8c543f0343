package docsync_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/bitmask-go/bitmask/internal/docsync"
)

// A client that keeps writing (APPEND after APPEND) must not hold a sync
// in a round per write: each round commits to the local store, and the
// writer then waits for that commit as often as it writes. A sync takes
// what was dirty, one round more for what was edited meanwhile, and
// leaves what is written later to the sync that write asks for.

// TestSyncDoesNotChaseAWriter: a document written before every batch is
// taken; the sync pushes twice and returns.
func TestSyncDoesNotChaseAWriter(t *testing.T) {
	a := newTestAccount(t, "chase").newDevice(t)
	if err := a.Put("w0", []byte(`{"v":0}`)); err != nil {
		t.Fatal(err)
	}
	writes := 0
	a.SetTestBeforeCollect(func() {
		if writes < 50 {
			writes++
			if err := a.Put(fmt.Sprintf("w%d", writes), []byte(`{"v":1}`)); err != nil {
				t.Error(err)
			}
		}
	})
	a.sync(t)
	a.remote.mu.Lock()
	pushes := a.remote.pushCount
	a.remote.mu.Unlock()
	if pushes > 2 || writes > 3 {
		t.Fatalf("one sync pushed %d times while a writer wrote %d documents; want at most 2", pushes, writes)
	}
}

// TestBlobPushDoesNotChaseAWriter: a message (document and blob) staged
// during every blob upload; the sync uploads the blobs pending when it
// looked, not every one written while it uploads.
func TestBlobPushDoesNotChaseAWriter(t *testing.T) {
	a := newTestAccount(t, "blobchase").newDevice(t)
	putBlobsAndDoc(t, a, 1)
	var mu sync.Mutex
	writes := 0
	a.remote.set(func(s *steeredRemote) {
		s.beforeBlob = func(string) error {
			mu.Lock()
			defer mu.Unlock()
			if writes >= 50 {
				return nil
			}
			writes++
			blob := []byte(fmt.Sprintf("the body of message %d", writes))
			body := fmt.Sprintf(`{"blobs":[%q]}`, a.BlobID(blob))
			return a.PutBlobsAndDocs([][]byte{blob}, []docsync.Doc{{ID: fmt.Sprintf("m%d", writes), Body: []byte(body)}})
		}
	})
	if err := a.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.remote.mu.Lock()
	uploads := len(a.remote.blobsPut)
	a.remote.mu.Unlock()
	if uploads > 3 {
		t.Fatalf("one sync uploaded %d blobs while a writer staged one per upload; want at most 3", uploads)
	}
	if st := a.Status(); st.Pending == 0 {
		t.Fatal("what was written during the last upload should wait for the next sync")
	}
	// Nothing is lost: syncs without the writer take the rest.
	a.remote.set(func(s *steeredRemote) { s.beforeBlob = nil })
	a.sync(t)
	if st := a.Status(); st.Pending != 0 {
		t.Fatalf("%d documents still pending", st.Pending)
	}
}

// TestOwnPushEchoIsNoReasonToSync: the notification stream announces
// every change, the device's own pushes too. An announcement of only
// the device's own revisions does not start a sync (which would pull
// them back and push whatever was written meanwhile, the chase again);
// one that includes another device's change does.
func TestOwnPushEchoIsNoReasonToSync(t *testing.T) {
	acct := newTestAccount(t, "echo")
	a, b := acct.newDevice(t), acct.newDevice(t)
	if err := a.Put("first", []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	a.sync(t)
	if err := a.Put("second", []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.PushOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	own := a.remote.resultsFor("second")
	if len(own) != 1 || own[0].Seq == 0 {
		t.Fatalf("push results for second: %+v", own)
	}
	if st := a.Status(); st.LastSeq >= own[0].Seq {
		t.Fatalf("the test needs the push not pulled back yet: last seq %d, pushed %d", st.LastSeq, own[0].Seq)
	}
	a.TestNoteEvent(own[0].Seq)
	if !a.OnlyOwnChanges() {
		t.Fatal("the echo of the device's own push was taken for a change to pull")
	}
	if err := b.Put("other", []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	b.sync(t)
	theirs := b.remote.resultsFor("other")
	if len(theirs) != 1 || theirs[0].Seq <= own[0].Seq {
		t.Fatalf("push results for other: %+v", theirs)
	}
	a.TestNoteEvent(theirs[0].Seq)
	if a.OnlyOwnChanges() {
		t.Fatal("another device's change was taken for the echo of the device's own push")
	}
}
