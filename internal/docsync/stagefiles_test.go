package docsync_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/localstore"
)

// stageFiles stages a document naming content's blob through
// StageFiles, as an import does.
func stageFiles(t *testing.T, d *device, docID string, content []byte) *docsync.Staged {
	t.Helper()
	body := fmt.Sprintf(`{"blobs":[%q]}`, d.BlobID(content))
	w, err := d.StageFiles([][]byte{content}, []docsync.Doc{{ID: docID, Body: []byte(body)}})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// commitFiles is stageFiles, the sync of the files and the commit.
func commitFiles(t *testing.T, d *device, docID string, content []byte) {
	t.Helper()
	w := stageFiles(t, d, docID, content)
	if err := d.SyncStaged(w); err != nil {
		t.Fatal(err)
	}
	if err := d.st.Update(func(tx *localstore.Tx) error { return w.Write(tx) }); err != nil {
		t.Fatal(err)
	}
	w.Committed()
}

// TestStageFilesNamesOnlyWholeFiles: an import writes blobs straight to
// files, which get the blob's name only once synced. A crash before
// that leaves nothing under the name, so an APPEND of the same content
// afterwards (which trusts a file it finds) stores the blob itself; a
// whole file is kept when its content is imported again; the blobs go to
// the provider and to another device as they are.
func TestStageFilesNamesOnlyWholeFiles(t *testing.T) {
	acct := newTestAccount(t, "torn")
	a, b := acct.newDevice(t), acct.newDevice(t)
	ctx := context.Background()

	crashed := []byte("the body of a message whose import stopped before its sync")
	stageFiles(t, a, "imported", crashed) // then the crash: no SyncStaged, no commit
	if _, err := os.Stat(a.BlobPath(a.BlobID(crashed))); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("an unsynced import file is under the blob's name: %v", err)
	}
	if err := a.PutBlobsAndDocs([][]byte{crashed}, []docsync.Doc{{ID: "appended", Body: []byte(fmt.Sprintf(`{"blobs":[%q]}`, a.BlobID(crashed)))}}); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Blob(ctx, a.BlobID(crashed)); err != nil || string(got) != string(crashed) {
		t.Fatalf("blob appended after the crashed import: %q, %v", got, err)
	}

	imported := []byte("the body of an imported message")
	commitFiles(t, a, "imported-1", imported)
	if _, err := os.Stat(a.BlobPath(a.BlobID(imported))); err != nil {
		t.Fatalf("the synced import file is not under the blob's name: %v", err)
	}
	commitFiles(t, a, "imported-2", imported)
	if got, err := a.Blob(ctx, a.BlobID(imported)); err != nil || string(got) != string(imported) {
		t.Fatalf("blob after the same content imported again: %q, %v", got, err)
	}

	a.sync(t)
	b.sync(t)
	for _, c := range [][]byte{crashed, imported} {
		if got, err := b.Blob(ctx, b.BlobID(c)); err != nil || string(got) != string(c) {
			t.Fatalf("the other device's blob: %q, %v", got, err)
		}
	}
}

// TestSweepTempFilesLeavesBlobs: the temporary files a crash left
// behind (an import stopped before its sync) go; blobs' files and fresh
// temporary files stay.
func TestSweepTempFilesLeavesBlobs(t *testing.T) {
	a := newTestAccount(t, "sweep").newDevice(t)
	kept := []byte("an imported message that was committed")
	commitFiles(t, a, "kept", kept)
	stageFiles(t, a, "crashed", []byte("an import that stopped before its sync"))
	tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(filepath.Dir(a.BlobPath(a.BlobID(kept)))), "*", ".tmp-*"))
	if len(tmps) != 1 {
		t.Fatalf("temporary files before the sweep: %v", tmps)
	}
	a.SweepTempFiles(context.Background(), time.Now().Add(-time.Hour))
	if left, _ := filepath.Glob(tmps[0]); len(left) != 1 {
		t.Fatal("a fresh temporary file was swept")
	}
	a.SweepTempFiles(context.Background(), time.Now().Add(time.Minute))
	if left, _ := filepath.Glob(tmps[0]); len(left) != 0 {
		t.Fatal("a temporary file older than the cutoff was left")
	}
	if got, err := a.Blob(context.Background(), a.BlobID(kept)); err != nil || string(got) != string(kept) {
		t.Fatalf("the committed blob after the sweep: %q, %v", got, err)
	}
}
