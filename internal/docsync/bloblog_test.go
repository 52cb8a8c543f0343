package docsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/localstore/localstoretest"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// logCount is the number of blobs in the blob log.
func logCount(t *testing.T, st *localstore.Store) int {
	t.Helper()
	n := 0
	if err := st.View(func(tx *localstore.Tx) error { n = tx.Count(bucketBlobWAL); return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// reopen simulates a crash and a restart: the store closed with nothing
// more written (no flush), opened again by a new engine.
func reopen(t *testing.T, st *localstore.Store, k *seal.Keys) (*localstore.Store, *Engine) {
	t.Helper()
	path := st.Path()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st2, err := localstore.Open(path, k)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st2.Close() })
	return st2, New(st2, &feedRemote{}, k, feedUser, nil)
}

func checkBlob(t *testing.T, e *Engine, id string, want []byte) {
	t.Helper()
	got, err := e.Blob(context.Background(), id)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("blob %s: %d bytes, %v; want %d bytes", id, len(got), err, len(want))
	}
	if !e.HasBlob(id) {
		t.Fatalf("HasBlob(%s) is false", id)
	}
}

// TestBlobLogCrashBeforeFlush: a blob is durable with its document's
// commit, before its file is written: after a crash there, it is read
// from the log, and the next flush writes its file and empties the log.
func TestBlobLogCrashBeforeFlush(t *testing.T) {
	st, k := localstoretest.Open(t)
	e := New(st, &feedRemote{}, k, feedUser, nil)
	raw := bytes.Repeat([]byte("a message body\r\n"), 640)
	id := e.BlobID(raw)
	if err := e.PutBlobsAndDocs([][]byte{raw}, []Doc{{ID: "m1", Body: []byte(`{"blob":"` + id + `"}`)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(e.blobPath(id)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the blob's file is written before a flush: %v", err)
	}
	st, e = reopen(t, st, k)
	if n := logCount(t, st); n != 1 {
		t.Fatalf("%d blobs in the log after the crash, want 1", n)
	}
	checkBlob(t, e, id, raw)
	if d, err := e.Get("m1"); err != nil || d == nil {
		t.Fatalf("the document after the crash: %v", err)
	}
	if err := e.FlushBlobs(); err != nil {
		t.Fatal(err)
	}
	if n := logCount(t, st); n != 0 {
		t.Fatalf("%d blobs in the log after a flush, want 0", n)
	}
	if _, err := os.Stat(e.blobPath(id)); err != nil {
		t.Fatalf("the blob's file after a flush: %v", err)
	}
	checkBlob(t, e, id, raw)
	// Uploaded as before: the upload mark survived.
	var pending int
	_ = st.View(func(tx *localstore.Tx) error { pending = tx.Count(bucketBlobPending); return nil })
	if pending != 1 {
		t.Fatalf("%d blobs marked for upload, want 1", pending)
	}
}

// TestBlobLogCrashDuringFlush: a crash after a flush wrote a file (torn:
// not synced yet) and before it took the blob off the log: the blob is
// read from the log, not from the torn file, and the next flush writes
// the file again.
func TestBlobLogCrashDuringFlush(t *testing.T) {
	st, k := localstoretest.Open(t)
	e := New(st, &feedRemote{}, k, feedUser, nil)
	raw := []byte("Subject: torn\r\n\r\nthe body\r\n")
	id, err := e.PutBlob(raw)
	if err != nil {
		t.Fatal(err)
	}
	path := e.blobPath(id)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, e = reopen(t, st, k)
	checkBlob(t, e, id, raw)
	if err := e.FlushBlobs(); err != nil {
		t.Fatal(err)
	}
	if n := logCount(t, st); n != 0 {
		t.Fatalf("%d blobs in the log after a flush, want 0", n)
	}
	checkBlob(t, e, id, raw)
}

// TestStagedWriteFailsWhole: a staged write committed in the caller's
// transaction goes with it: when the caller's part fails, neither the
// blob nor the document is stored.
func TestStagedWriteFailsWhole(t *testing.T) {
	st, k := localstoretest.Open(t)
	e := New(st, &feedRemote{}, k, feedUser, nil)
	raw := []byte("never stored")
	w, err := e.Stage([][]byte{raw}, []Doc{{ID: "m1", Body: []byte(`{}`)}})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("the caller's part failed")
	err = st.Update(func(tx *localstore.Tx) error {
		if err := w.Write(tx); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update: %v", err)
	}
	if e.HasBlob(e.BlobID(raw)) {
		t.Fatal("the blob is stored")
	}
	if _, err := e.Get("m1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the document: %v", err)
	}
}

// TestLargeBlobSkipsTheLog: a blob larger than walBlobMax is written to
// its file before the transaction, as before the log.
func TestLargeBlobSkipsTheLog(t *testing.T) {
	st, k := localstoretest.Open(t)
	e := New(st, &feedRemote{}, k, feedUser, nil)
	raw := bytes.Repeat([]byte{'x'}, walBlobMax+1)
	id, err := e.PutBlob(raw)
	if err != nil {
		t.Fatal(err)
	}
	if n := logCount(t, st); n != 0 {
		t.Fatalf("%d blobs in the log, want 0", n)
	}
	if _, err := os.Stat(e.blobPath(id)); err != nil {
		t.Fatal(err)
	}
	checkBlob(t, e, id, raw)
}

// TestRunFlushesTheLogAtTheEnd: when Run ends (bitmaskd stops), the
// blobs of the log are in their files, so a clean stop leaves it empty.
func TestRunFlushesTheLogAtTheEnd(t *testing.T) {
	st, k := localstoretest.Open(t)
	e := New(st, &feedRemote{}, k, feedUser, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.Run(ctx, time.Hour) }()
	var ids []string
	for i := range 3 {
		id, err := e.PutBlob([]byte{byte(i), 'b'})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	cancel()
	<-done
	if n := logCount(t, st); n != 0 {
		t.Fatalf("%d blobs in the log after Run, want 0", n)
	}
	for _, id := range ids {
		if _, err := os.Stat(e.blobPath(id)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConcurrentWritesShareCommits: writes from many callers at once
// (committed in shared transactions) each land whole.
func TestConcurrentWritesShareCommits(t *testing.T) {
	st, k := localstoretest.Open(t)
	e := New(st, &feedRemote{}, k, feedUser, nil)
	const n = 40
	errs := make(chan error, n)
	for i := range n {
		go func() {
			raw := []byte(fmt.Sprintf("message %d", i))
			errs <- e.PutBlobsAndDocs([][]byte{raw}, []Doc{{ID: fmt.Sprintf("m%d", i), Body: []byte(`{"blob":"` + e.BlobID(raw) + `"}`)}})
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		raw := []byte(fmt.Sprintf("message %d", i))
		checkBlob(t, e, e.BlobID(raw), raw)
		if _, err := e.Get(fmt.Sprintf("m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWriteAppliedIsNotListed: a staged write that its consumer applies
// in the same transaction leaves no change listed; Write leaves one.
func TestWriteAppliedIsNotListed(t *testing.T) {
	st, k := localstoretest.Open(t)
	e := New(st, &feedRemote{}, k, feedUser, nil)
	for _, applied := range []bool{false, true} {
		w, err := e.Stage([][]byte{[]byte("body")}, []Doc{{ID: fmt.Sprintf("m%v", applied), Body: []byte(`{}`)}})
		if err != nil {
			t.Fatal(err)
		}
		write := w.Write
		if applied {
			write = w.WriteApplied
		}
		if err := st.Update(write); err != nil {
			t.Fatal(err)
		}
		w.Committed()
	}
	changes, err := e.Changed(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].ID != "mfalse" {
		t.Fatalf("changes listed: %+v, want only mfalse", changes)
	}
}
