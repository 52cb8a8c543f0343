package docsync_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

const password = "correct horse battery staple"

func idsOfType(t *testing.T, e *docsync.Engine, typ string) []string {
	t.Helper()
	var ids []string
	if err := e.ForEachType(typ, func(d *docsync.Doc) error { ids = append(ids, d.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

// TestTypeAndPushIndexes: the index of documents by type and the index
// of documents waiting to be pushed follow local writes, pulls from
// another device, deletions and type changes; a type indexed late is
// built from what is there.
func TestTypeAndPushIndexes(t *testing.T) {
	ctx := context.Background()
	p := testenv.StartProvider(t, testenv.Options{})
	// Device A's background sync would push the writes below while the
	// test counts them: A is offline while it writes.
	var offline atomic.Bool
	da := testenv.NewDaemon(t, testenv.DaemonOptions{Offline: offline.Load})
	db := testenv.NewDaemon(t, testenv.DaemonOptions{})
	addr := "ines@" + testenv.Domain
	A := testenv.NewUser(t, da, p, addr)
	B, err := db.Login(ctx, addr, []byte(password), p.Ref())
	if err != nil {
		t.Fatal(err)
	}
	ea, eb := A.Docs, B.Docs
	for _, e := range []*docsync.Engine{ea, eb} {
		if err := e.IndexTypes("note"); err != nil {
			t.Fatal(err)
		}
	}
	if err := ea.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	offline.Store(true)
	base := ea.Status().Pending
	put := func(id, typ string) {
		t.Helper()
		if err := ea.Put(id, []byte(`{"type":"`+typ+`","text":"x"}`)); err != nil {
			t.Fatal(err)
		}
	}
	put("note1", "note")
	put("todo1", "todo")
	put("note2", "note")
	put("note3", "note")
	if err := ea.Delete("note3"); err != nil { // never reached the provider
		t.Fatal(err)
	}
	if got := idsOfType(t, ea, "note"); !slices.Equal(got, []string{"note1", "note2"}) {
		t.Fatalf("notes: %v", got)
	}
	if got := ea.Status().Pending - base; got != 3 {
		t.Fatalf("pending: %d, want 3", got)
	}
	if err := ea.ForEachType("todo", func(*docsync.Doc) error { return nil }); err == nil {
		t.Fatal("an unindexed type was walked")
	}
	offline.Store(false)
	if err := ea.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ea.Status().Pending; got != 0 {
		t.Fatalf("pending after sync: %d", got)
	}
	if err := eb.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := idsOfType(t, eb, "note"); !slices.Equal(got, []string{"note1", "note2"}) {
		t.Fatalf("notes on the second device: %v", got)
	}
	// A deletion and a change of type, from the other device.
	if err := eb.Delete("note1"); err != nil {
		t.Fatal(err)
	}
	if err := eb.Put("note2", []byte(`{"type":"todo"}`)); err != nil {
		t.Fatal(err)
	}
	if err := eb.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ea.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := idsOfType(t, ea, "note"); len(got) != 0 {
		t.Fatalf("notes after delete and retype: %v", got)
	}
	// Indexed late: built from the documents there.
	if err := ea.IndexTypes("todo"); err != nil {
		t.Fatal(err)
	}
	if got := idsOfType(t, ea, "todo"); !slices.Equal(got, []string{"note2", "todo1"}) {
		t.Fatalf("todos: %v", got)
	}
}

// TestPushIndexBuiltForOldStores: a store written before the index of
// pending changes existed gets it built, and its changes are pushed.
func TestPushIndexBuiltForOldStores(t *testing.T) {
	ctx := context.Background()
	p := testenv.StartProvider(t, testenv.Options{})
	var offline atomic.Bool
	d := testenv.NewDaemon(t, testenv.DaemonOptions{Offline: offline.Load})
	addr := "jon@" + testenv.Domain
	A := testenv.NewUser(t, d, p, addr)
	offline.Store(true)
	for _, id := range []string{"old1", "old2"} {
		if err := A.Docs.Put(id, []byte(`{"type":"note"}`)); err != nil {
			t.Fatal(err)
		}
	}
	// Forget the index, as a store from before it would be.
	err := A.Store().Update(func(tx *localstore.Tx) error {
		if err := tx.DeleteBucket("docs-dirty"); err != nil {
			return err
		}
		return tx.Delete("sync-state", "dirty-index")
	})
	if err != nil {
		t.Fatal(err)
	}
	e := docsync.New(A.Store(), A.Client(), A.Keys(), addr, nil)
	if got := e.Status().Pending; got < 2 {
		t.Fatalf("pending in a rebuilt index: %d", got)
	}
	offline.Store(false)
	if err := e.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.Status().Pending; got != 0 {
		t.Fatalf("pending after sync: %d", got)
	}
}
