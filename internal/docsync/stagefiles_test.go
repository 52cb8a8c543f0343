package docsync_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/localstore"
)

// commitFiles stages a document naming content's blob through
// StageFiles, syncs the file and commits, as an import does.
func commitFiles(t *testing.T, d *device, docID string, content []byte) {
	t.Helper()
	body := fmt.Sprintf(`{"blobs":[%q]}`, d.BlobID(content))
	w, err := d.StageFiles([][]byte{content}, []docsync.Doc{{ID: docID, Body: []byte(body)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SyncStaged(w); err != nil {
		t.Fatal(err)
	}
	if err := d.st.Update(func(tx *localstore.Tx) error { return w.Write(tx) }); err != nil {
		t.Fatal(err)
	}
	w.Committed()
}

// TestStageFilesRewritesATornFile: an import writes blobs straight to
// their files, synced before the transaction naming them. A file left
// torn by a crash before that sync (no document names it) is written
// again, not trusted; a whole file named by a document survives the same
// content imported again; the blob goes to the provider and to another
// device as it is.
func TestStageFilesRewritesATornFile(t *testing.T) {
	acct := newTestAccount(t, "torn")
	a, b := acct.newDevice(t), acct.newDevice(t)
	content := []byte("the body of an imported message")
	id := a.BlobID(content)
	path := a.BlobPath(id)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("torn"), 0o600); err != nil {
		t.Fatal(err)
	}
	commitFiles(t, a, "imported", content)
	got, err := a.Blob(context.Background(), id)
	if err != nil || string(got) != string(content) {
		t.Fatalf("blob after the import over a torn file: %q, %v", got, err)
	}
	commitFiles(t, a, "imported-again", content)
	if got, err := a.Blob(context.Background(), id); err != nil || string(got) != string(content) {
		t.Fatalf("blob after the same content imported again: %q, %v", got, err)
	}
	a.sync(t)
	b.sync(t)
	if got, err := b.Blob(context.Background(), id); err != nil || string(got) != string(content) {
		t.Fatalf("the other device's blob: %q, %v", got, err)
	}
}
