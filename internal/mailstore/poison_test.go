package mailstore

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/testlog"
	"github.com/bitmask-go/bitmask/pkg/seal"
	"github.com/bitmask-go/bitmask/pkg/seal/sealtest"
)

// openLogged is openLocal with the store's log kept.
func openLogged(t *testing.T, path string, k *seal.Keys, idx Indexer, logs *testlog.Buffer) (*localstore.Store, *Store) {
	t.Helper()
	st, err := localstore.Open(path, k)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(logs, nil))
	ms, err := Open(docsync.New(st, nil, k, "u@example.test", nil), st, k, idx, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close(); st.Close() })
	return st, ms
}

// pulled stores message documents and their blobs as a pull would.
func pulled(t *testing.T, ms *Store, msgs map[string]string) {
	t.Helper()
	var blobs [][]byte
	var docs []docsync.Doc
	for id, subject := range msgs {
		raw, body := messageDocFor(ms, []byte("Subject: "+subject+"\r\n\r\nbody of "+subject+"\r\n"), "INBOX")
		blobs = append(blobs, raw)
		docs = append(docs, docsync.Doc{ID: id, Body: body})
	}
	if err := ms.docs.PutBlobsAndDocs(blobs, docs); err != nil {
		t.Fatal(err)
	}
}

// TestPanickingChangeIsSetAside: a change whose application panics does
// not stop the worker nor hold up the other changes; it is set aside
// (not tried again at every pull), tried again when a newer change of
// the document comes and at the next start, and applied once bitmaskd
// can. The log says what panicked and where, not what the message is.
func TestPanickingChangeIsSetAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	k := sealtest.Keys(t)
	const poison = "poisoneddoc"
	var mu sync.Mutex
	tries := 0
	testHookApplyMessage = func(id string) {
		if id == poison {
			mu.Lock()
			tries++
			mu.Unlock()
			panic("cannot apply Subject: secret plans")
		}
	}
	t.Cleanup(func() { testHookApplyMessage = nil })
	triesNow := func() int {
		mu.Lock()
		defer mu.Unlock()
		return tries
	}
	var logs testlog.Buffer
	st, ms := openLogged(t, path, k, nil, &logs)
	ctx := context.Background()

	pulled(t, ms, map[string]string{poison: "secret plans", "fine1": "fine", "fine2": "fine too"})
	ms.drain(ctx)
	if got := mailboxOf(ms, "fine1") + " " + mailboxOf(ms, "fine2"); got != "INBOX INBOX" {
		t.Fatalf("the other changes: %s", got)
	}
	if got := mailboxOf(ms, poison); got != "(not indexed)" || triesNow() != 1 || !isListed(ms, poison) {
		t.Fatalf("the poisoned change: %s, tried %d times, listed %v", got, triesNow(), isListed(ms, poison))
	}
	// Not tried again when sync pulls (which retries what failed), nor
	// at the worker's next rounds.
	ms.retryNow.Store(true)
	ms.drain(ctx)
	ms.drain(ctx)
	if n := triesNow(); n != 1 {
		t.Fatalf("a set-aside change was tried %d times", n)
	}
	// Later changes go through.
	pulled(t, ms, map[string]string{"fine3": "later"})
	ms.drain(ctx)
	if got := mailboxOf(ms, "fine3"); got != "INBOX" {
		t.Fatalf("a later change: %s", got)
	}
	// A newer change of the document is tried (and set aside again).
	moveDoc(t, ms, poison, "Archive")
	ms.drain(ctx)
	if n := triesNow(); n != 2 {
		t.Fatalf("a newer change of a set-aside document was tried %d times in all, want 2", n)
	}
	log := logs.String()
	if strings.Count(log, "applying a change panicked; set aside") != 2 || !strings.Contains(log, "stack=") {
		t.Fatalf("log:\n%s", log)
	}
	if strings.Contains(log, "secret") {
		t.Fatalf("the log holds message content:\n%s", log)
	}

	// The next start tries it once more, and survives it.
	st, ms = reopen(t, st, ms, path, k, nil)
	if n := triesNow(); n != 3 || mailboxOf(ms, poison) != "(not indexed)" || !isListed(ms, poison) {
		t.Fatalf("after a restart: tried %d times in all, %s", n, mailboxOf(ms, poison))
	}
	// A bitmaskd that can apply it does, at its start.
	testHookApplyMessage = nil
	_, ms = reopen(t, st, ms, path, k, nil)
	if got := mailboxOf(ms, poison); got != "Archive" || isListed(ms, poison) {
		t.Fatalf("once it can be applied: %s, listed %v", got, isListed(ms, poison))
	}
}

// TestPanickingIndexerStoresWithoutMetadata: an indexer that panics on a
// message (written locally or pulled) does not fail its write: the
// message is stored without metadata, the others with theirs.
func TestPanickingIndexerStoresWithoutMetadata(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	k := sealtest.Keys(t)
	idx := func(raw []byte) ([]byte, error) {
		if bytes.Contains(raw, []byte("Subject: bad")) {
			var parts [][]byte
			_ = parts[len(raw)%7] // out of range, as a parser's bug would make
		}
		return []byte("meta"), nil
	}
	var logs testlog.Buffer
	_, ms := openLogged(t, path, k, idx, &logs)
	ctx := context.Background()
	bad, _, err := ms.Append(ctx, "INBOX", []byte("Subject: bad\r\n\r\nx"), nil, time.Time{})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	good, _, err := ms.Append(ctx, "INBOX", []byte("Subject: good\r\n\r\nx"), nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	pulled(t, ms, map[string]string{"pulledbad": "bad one"})
	ms.drain(ctx)
	for _, id := range []string{bad.ID, "pulledbad", good.ID} {
		if got := mailboxOf(ms, id); got != "INBOX" {
			t.Fatalf("%s: %s", id, got)
		}
	}
	for id, want := range map[string]string{bad.ID: "", "pulledbad": "", good.ID: "meta"} {
		if meta, _ := ms.Meta(id); string(meta) != want {
			t.Fatalf("meta of %s: %q, want %q", id, meta, want)
		}
	}
	log := logs.String()
	if strings.Count(log, "the indexer panicked") != 2 || !strings.Contains(log, "index out of range") {
		t.Fatalf("log:\n%s", log)
	}
}
