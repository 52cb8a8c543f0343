package docsync_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/providerapi"
)

// TestPushConflictMergesAndConverges, after docs/sync.md "Push" and
// "Conflicts": when another device's revision lands between this
// device's pull and its push, the provider "answers conflict with its
// current revision"; the conflicting document is "merged with the
// returned current revision and pushed again in the next round", and
// "the second writer merges, pushes the merge, and the first device
// pulls it": both devices end with the same document. Each row is one
// rule of the merge, the first device's change landing first.
func TestPushConflictMergesAndConverges(t *testing.T) {
	acct := newTestAccount(t, "sam")
	first, second := acct.newDevice(t), acct.newDevice(t)
	const deleted = ""
	for i, c := range []struct {
		rule, base    string
		first, second string // deleted: a deletion
		want          string // deleted: gone on both
		sets          bool
	}{
		{rule: "a field changed on one side takes that side's value",
			base: `{"a":1,"b":1}`, first: `{"a":2,"b":1}`, second: `{"a":1,"b":3}`, want: `{"a":2,"b":3}`},
		{rule: "flags merge per flag", sets: true,
			base: `{"flags":["s"]}`, first: `{"flags":["s","f"]}`, second: `{"flags":[]}`, want: `{"flags":["f"]}`},
		{rule: "objects merge recursively",
			base: `{"m":{"x":1,"y":1}}`, first: `{"m":{"x":2,"y":1}}`, second: `{"m":{"x":1,"y":3}}`, want: `{"m":{"x":2,"y":3}}`},
		{rule: "anything else takes the local value (the later writer)",
			base: `{"s":"base"}`, first: `{"s":"first"}`, second: `{"s":"second"}`, want: `{"s":"second"}`},
		{rule: "deletion wins (deleted first)",
			base: `{"a":1}`, first: deleted, second: `{"a":2}`, want: deleted},
		{rule: "deletion wins (deleted second)",
			base: `{"a":1}`, first: `{"a":2}`, second: deleted, want: deleted},
	} {
		t.Run(c.rule, func(t *testing.T) {
			id := fmt.Sprintf("doc%d", i)
			change := func(d *device, body string) {
				t.Helper()
				var err error
				if body == deleted {
					err = d.Delete(id)
				} else {
					err = d.Put(id, []byte(body))
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			change(first, c.base)
			first.sync(t)
			second.sync(t)
			change(first, c.first)
			change(second, c.second)
			// The first device's change lands after the second
			// device's pull, as its push goes out.
			second.remote.set(func(s *steeredRemote) { s.beforePush = func() { first.sync(t) } })
			second.sync(t)
			res := second.remote.resultsFor(id)
			if len(res) < 2 || res[len(res)-2].Status != providerapi.PushConflict || res[len(res)-1].Status != providerapi.PushOK {
				t.Fatalf("answers to the second device's pushes: %+v, want a conflict then ok", res)
			}
			first.sync(t)
			for _, d := range []*device{first, second} {
				got := d.body(t, id)
				if c.want == deleted {
					if got != deleted {
						t.Fatalf("rule %q: a device has %s, want it deleted", c.rule, got)
					}
				} else if !sameJSON(t, []byte(got), []byte(c.want), c.sets) {
					t.Fatalf("rule %q: a device has %s, want %s", c.rule, got, c.want)
				}
				if n := d.Status().Pending; n != 0 {
					t.Fatalf("pending: %d", n)
				}
			}
		})
	}
}

// TestPushEditedWhileInFlight, after docs/sync.md "Push": "Accepted
// documents become clean (or stay dirty on the new base if edited
// meanwhile)"; the edit goes out as the next revision.
func TestPushEditedWhileInFlight(t *testing.T) {
	acct := newTestAccount(t, "tove")
	a, b := acct.newDevice(t), acct.newDevice(t)
	if err := a.Put("e", []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	// The edit lands while the push is in flight; the pushes after
	// that one fail, to look at the state in between.
	a.remote.set(func(s *steeredRemote) {
		s.failPushFrom = 2
		s.beforePush = func() {
			if err := a.Put("e", []byte(`{"v":2}`)); err != nil {
				t.Error(err)
			}
		}
	})
	if err := a.Sync(context.Background()); err == nil {
		t.Fatal("the sync did not fail")
	}
	doc, err := a.Get("e")
	if err != nil {
		t.Fatal(err)
	}
	if string(doc.Body) != `{"v":2}` || doc.Rev != 1 || a.Status().Pending != 1 {
		t.Fatalf("after the push: %s on revision %d, %d pending; want the edit, dirty on revision 1", doc.Body, doc.Rev, a.Status().Pending)
	}
	b.sync(t)
	if got := b.body(t, "e"); got != `{"v":1}` {
		t.Fatalf("the provider took %s, want what was pushed", got)
	}
	a.remote.set(func(s *steeredRemote) { s.failPushFrom = 0 })
	a.sync(t)
	pushes := a.remote.pushesOf("e")
	if last := pushes[len(pushes)-1]; last.BaseRev != 1 || last.Rev != 2 {
		t.Fatalf("the edit went out as revision %d on %d, want 2 on 1", last.Rev, last.BaseRev)
	}
	b.sync(t)
	if got := b.body(t, "e"); got != `{"v":2}` || a.Status().Pending != 0 {
		t.Fatalf("the other device has %s, %d pending here", got, a.Status().Pending)
	}
}

// TestPushBatchesAndRevisions, after docs/sync.md "Push": "dirty
// documents in batches of 500, each as revision rev+1 on base rev", a
// deletion as a tombstone revision.
func TestPushBatchesAndRevisions(t *testing.T) {
	acct := newTestAccount(t, "uma")
	a := acct.newDevice(t)
	docs := make([]docsync.Doc, 501)
	for i := range docs {
		docs[i] = docsync.Doc{ID: fmt.Sprintf("b%03d", i), Body: []byte(`{"n":1}`)}
	}
	if err := a.PutBatch(docs); err != nil {
		t.Fatal(err)
	}
	a.sync(t)
	a.remote.mu.Lock()
	var sizes []int
	for _, b := range a.remote.pushed {
		sizes = append(sizes, len(b))
		for _, d := range b {
			if d.BaseRev != 0 || d.Rev != 1 || d.Deleted {
				t.Errorf("new document pushed as revision %d on %d (deleted %v)", d.Rev, d.BaseRev, d.Deleted)
			}
		}
	}
	a.remote.pushed = nil
	a.remote.mu.Unlock()
	if !slices.Equal(sizes, []int{500, 1}) {
		t.Fatalf("batches of %v, want 500 and 1", sizes)
	}
	if err := a.Put("b000", []byte(`{"n":2}`)); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete("b001"); err != nil {
		t.Fatal(err)
	}
	a.sync(t)
	for _, c := range []struct {
		id      string
		deleted bool
	}{{"b000", false}, {"b001", true}} {
		p := a.remote.pushesOf(c.id)
		if len(p) != 1 || p[0].BaseRev != 1 || p[0].Rev != 2 || p[0].Deleted != c.deleted {
			t.Fatalf("%s pushed as %+v, want revision 2 on 1 (deleted %v)", c.id, p, c.deleted)
		}
	}
}

// TestBlobsGoBeforeDocuments, after docs/sync.md: "Blobs are uploaded
// before the documents of the same push", so another device can fetch
// the blob of every document it pulls.
func TestBlobsGoBeforeDocuments(t *testing.T) {
	acct := newTestAccount(t, "vera")
	a, b := acct.newDevice(t), acct.newDevice(t)
	content := []byte("the body of a message")
	id := a.BlobID(content)
	if err := a.PutBlobsAndDocs([][]byte{content}, []docsync.Doc{{ID: "msg", Body: []byte(`{"blob":"` + id + `"}`)}}); err != nil {
		t.Fatal(err)
	}
	a.sync(t)
	a.remote.mu.Lock()
	calls := slices.Clone(a.remote.calls)
	a.remote.mu.Unlock()
	if !slices.Equal(calls, []string{"blob", "push"}) {
		t.Fatalf("calls: %v, want the blob, then the document", calls)
	}
	b.sync(t)
	if b.body(t, "msg") == "" || b.HasBlob(id) {
		t.Fatal("the second device should have the document and not yet the blob")
	}
	got, err := b.Blob(context.Background(), id)
	if err != nil || string(got) != string(content) {
		t.Fatalf("blob on the other device: %q, %v", got, err)
	}
}

// TestLostPushAnswerIsRecognised, after docs/sync.md "Lost answers": the
// answer to a deletion is lost, the device edits the document again
// offline, and the provider's copy (the deletion) comes back "from the
// changes feed, or as the current revision of a conflict": it "matches an
// attempt" and "is acknowledged as the device's own rather than merged as
// another device's change (in which a deletion of the device's own would
// win over its later edit)". The edit survives on both devices.
func TestLostPushAnswerIsRecognised(t *testing.T) {
	acct := newTestAccount(t, "wim")
	a, b := acct.newDevice(t), acct.newDevice(t)
	for _, via := range []string{"changes feed", "conflict"} {
		t.Run(via, func(t *testing.T) {
			id := "lost-" + via[:4]
			if err := a.Put(id, []byte(`{"v":1}`)); err != nil {
				t.Fatal(err)
			}
			a.sync(t)
			if err := a.Delete(id); err != nil {
				t.Fatal(err)
			}
			a.remote.set(func(s *steeredRemote) { s.loseAnswers = 1 })
			if err := a.Sync(context.Background()); err == nil {
				t.Fatal("a sync whose answer was lost did not fail")
			}
			if err := a.Put(id, []byte(`{"v":2}`)); err != nil {
				t.Fatal(err)
			}
			if via == "conflict" {
				// The feed lags: the deletion comes back only as the
				// current revision of a conflict.
				a.remote.set(func(s *steeredRemote) { s.hide = id })
				defer a.remote.set(func(s *steeredRemote) { s.hide = "" })
			}
			a.sync(t)
			conflicted := false
			for _, r := range a.remote.resultsFor(id) {
				if r.Status == providerapi.PushConflict {
					conflicted = true
					if r.Current == nil || r.Current.Rev != 2 || !r.Current.Deleted {
						t.Fatalf("conflict with %+v, want our deletion at revision 2", r.Current)
					}
				}
			}
			if conflicted != (via == "conflict") {
				t.Fatalf("conflict answered: %v", conflicted)
			}
			if got := a.body(t, id); got != `{"v":2}` || a.Status().Pending != 0 {
				t.Fatalf("here: %q, %d pending; want the edit, pushed", got, a.Status().Pending)
			}
			b.sync(t)
			if got := b.body(t, id); got != `{"v":2}` {
				t.Fatalf("the other device has %q, want the edit", got)
			}
		})
	}
}
