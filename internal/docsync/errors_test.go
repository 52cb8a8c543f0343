package docsync_test

import (
	"context"
	"errors"
	"testing"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/localstore/localstoretest"
)

// TestErrorsKeepTheirIdentity: the errors docsync returns keep what
// callers test for. A missing document is ErrNotFound; the error of a
// caller's function (Modify, ForEach, ForEachType) comes back as it is;
// a sync that fails on the provider's side wraps the client's error.
func TestErrorsKeepTheirIdentity(t *testing.T) {
	st, keys := localstoretest.Open(t)
	e := docsync.New(st, nil, keys, "x@example.test", nil)
	if err := e.IndexTypes("note"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Get("missing"); !errors.Is(err, docsync.ErrNotFound) {
		t.Fatalf("a missing document: %v", err)
	}
	if err := e.Put("n", []byte(`{"type":"note"}`)); err != nil {
		t.Fatal(err)
	}
	if err := e.Delete("n"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Get("n"); !errors.Is(err, docsync.ErrNotFound) {
		t.Fatalf("a deleted document: %v", err)
	}
	if err := e.Put("n", []byte(`{"type":"note"}`)); err != nil {
		t.Fatal(err)
	}
	mine := errors.New("the caller's own error")
	for name, call := range map[string]func() error{
		"Modify": func() error {
			return e.Modify([]string{"n"}, func(string, []byte) ([]byte, bool, bool, error) { return nil, false, false, mine })
		},
		"ForEach":     func() error { return e.ForEach(func(*docsync.Doc) error { return mine }) },
		"ForEachType": func() error { return e.ForEachType("note", func(*docsync.Doc) error { return mine }) },
	} {
		if err := call(); err != mine {
			t.Errorf("%s: %v, want the function's own error", name, err)
		}
	}
	if err := e.Put("", nil); err == nil {
		t.Error("an empty id was taken")
	}

	acct := newTestAccount(t, "xena")
	d := acct.newDevice(t)
	d.remote.set(func(s *steeredRemote) { s.failChangesFrom = 1 })
	if err := d.Sync(context.Background()); !errors.Is(err, errSteered) {
		t.Fatalf("a failed pull: %v", err)
	}
	d.remote.set(func(s *steeredRemote) { s.failChangesFrom, s.failPushFrom = 0, 1 })
	if err := d.Put("p", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(context.Background()); !errors.Is(err, errSteered) {
		t.Fatalf("a failed push: %v", err)
	}
}
