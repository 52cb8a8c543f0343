package docsync_test

import (
	"slices"
	"sync"
	"testing"
)

// TestPullReplacesCleanAndSkipsOwn, after docs/sync.md "Pull": a
// revision from another device replaces a clean local document (a
// deletion too) and is announced; "the same revision is ours (our own
// push coming back): skipped", so it changes nothing, announces nothing
// and lists nothing for the mail store.
func TestPullReplacesCleanAndSkipsOwn(t *testing.T) {
	acct := newTestAccount(t, "pia")
	a, b := acct.newDevice(t), acct.newDevice(t)
	var mu sync.Mutex
	var announced []string
	b.OnChange(func(ids []string) { mu.Lock(); announced = append(announced, ids...); mu.Unlock() })
	announcedOn := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(announced) }

	if err := a.Put("n1", []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	a.sync(t)
	b.sync(t)
	if got := b.body(t, "n1"); got != `{"v":1}` {
		t.Fatalf("pulled: %q", got)
	}
	if !slices.Contains(announcedOn(), "n1") {
		t.Fatalf("a pulled document was not announced: %v", announcedOn())
	}
	if err := a.Put("n1", []byte(`{"v":2}`)); err != nil {
		t.Fatal(err)
	}
	a.sync(t)
	b.sync(t)
	if got := b.body(t, "n1"); got != `{"v":2}` {
		t.Fatalf("a clean document was not replaced: %q", got)
	}
	if err := a.Delete("n1"); err != nil {
		t.Fatal(err)
	}
	a.sync(t)
	b.sync(t)
	if got := b.body(t, "n1"); got != "" {
		t.Fatalf("a pulled deletion left %q", got)
	}

	// b's own push comes back in the pull of the sync's next round.
	if err := b.Put("own", []byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	b.takeChanges(t) // the local write's change
	mu.Lock()
	announced = nil
	mu.Unlock()
	b.sync(t)
	if !slices.Contains(b.remote.pulledIDs(), "own") {
		t.Fatal("our own revision did not come back in the feed")
	}
	if slices.Contains(announcedOn(), "own") {
		t.Fatal("our own revision coming back was announced as a change")
	}
	if ch, err := b.Changed(0); err != nil || len(ch) != 0 {
		t.Fatalf("changes listed after our own revision came back: %v, %v", ch, err)
	}
	if doc, err := b.Get("own"); err != nil || doc.Rev != 1 || string(doc.Body) != `{"v":1}` {
		t.Fatalf("own document: %+v, %v", doc, err)
	}
	if n := b.Status().Pending; n != 0 {
		t.Fatalf("pending: %d", n)
	}
}

// TestPullMergesIntoDirty, after docs/sync.md "Pull": "if it is dirty the
// remote revision is merged into it and it stays dirty, now based on the
// remote revision"; the next push sends the merge as that revision plus
// one, and the other device takes it.
func TestPullMergesIntoDirty(t *testing.T) {
	acct := newTestAccount(t, "quinn")
	a, b := acct.newDevice(t), acct.newDevice(t)
	if err := a.Put("m", []byte(`{"a":1,"b":1}`)); err != nil {
		t.Fatal(err)
	}
	a.sync(t)
	b.sync(t)
	if err := a.Put("m", []byte(`{"a":2,"b":1}`)); err != nil {
		t.Fatal(err)
	}
	a.sync(t) // revision 2 at the provider
	if err := b.Put("m", []byte(`{"a":1,"b":3}`)); err != nil {
		t.Fatal(err)
	}
	b.remote.set(func(s *steeredRemote) { s.failPushFrom = 1 })
	if err := b.Sync(t.Context()); err == nil {
		t.Fatal("a sync whose push failed did not fail")
	}
	doc, err := b.Get("m")
	if err != nil {
		t.Fatal(err)
	}
	if !sameJSON(t, doc.Body, []byte(`{"a":2,"b":3}`), false) || doc.Rev != 2 {
		t.Fatalf("after the pull: %s on revision %d, want both edits on revision 2", doc.Body, doc.Rev)
	}
	if n := b.Status().Pending; n != 1 {
		t.Fatalf("pending after merging into a dirty document: %d, want 1", n)
	}
	b.remote.set(func(s *steeredRemote) { s.failPushFrom = 0 })
	b.sync(t)
	pushes := b.remote.pushesOf("m")
	if last := pushes[len(pushes)-1]; last.BaseRev != 2 || last.Rev != 3 {
		t.Fatalf("the merge was pushed as revision %d on %d, want 3 on 2", last.Rev, last.BaseRev)
	}
	a.sync(t)
	if got := a.body(t, "m"); !sameJSON(t, []byte(got), []byte(`{"a":2,"b":3}`), false) {
		t.Fatalf("the other device has %s", got)
	}
	if n := b.Status().Pending; n != 0 {
		t.Fatalf("pending: %d", n)
	}
}

// TestPullResumesWherePageStopped, after docs/sync.md "Pull": "Each page
// is applied in one local transaction together with the new sequence
// number, so a crash or a broken connection resumes exactly where it
// stopped."
func TestPullResumesWherePageStopped(t *testing.T) {
	acct := newTestAccount(t, "rosa")
	a, b := acct.newDevice(t), acct.newDevice(t)
	ids := []string{"p1", "p2", "p3", "p4", "p5", "p6", "p7"}
	for _, id := range ids {
		if err := a.Put(id, []byte(`{"id":"`+id+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	a.sync(t)
	// Pages of two; the third page breaks.
	b.remote.set(func(s *steeredRemote) { s.pageLimit, s.failChangesFrom = 2, 3 })
	if err := b.Sync(t.Context()); err == nil {
		t.Fatal("a pull whose third page broke did not fail")
	}
	b.remote.mu.Lock()
	ends := slices.Clone(b.remote.pageEnds)
	b.remote.mu.Unlock()
	if len(ends) != 2 {
		t.Fatalf("%d pages answered, want 2", len(ends))
	}
	if got := b.Status().LastSeq; got != ends[1] {
		t.Fatalf("sequence after the break: %d, want the second page's end %d", got, ends[1])
	}
	have := 0
	for _, id := range ids {
		if b.body(t, id) != "" {
			have++
		}
	}
	if have > 4 {
		t.Fatalf("%d documents after two pages of two", have)
	}
	b.remote.set(func(s *steeredRemote) { s.failChangesFrom = 0 })
	b.sync(t)
	b.remote.mu.Lock()
	resumed := b.remote.sinces[2]
	b.remote.mu.Unlock()
	if resumed != ends[1] {
		t.Fatalf("resumed since %d, want %d", resumed, ends[1])
	}
	for _, id := range ids {
		if got := b.body(t, id); got != `{"id":"`+id+`"}` {
			t.Fatalf("%s after resuming: %q", id, got)
		}
	}
}
