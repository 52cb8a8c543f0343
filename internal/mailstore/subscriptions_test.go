package mailstore

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/pkg/seal/sealtest"
)

var specialNames = []string{"Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"}

func with(names ...string) []string {
	out := append(slices.Clone(specialNames), names...)
	slices.Sort(out)
	return slices.Compact(out)
}

func subscribed(t *testing.T, ms *Store, name string) bool {
	t.Helper()
	info, err := ms.Mailbox(name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return info.Subscribed
}

// Subscriptions are kept apart from the mailboxes (RFC 3501 §6.3.6): a
// name that does not exist may be subscribed, DELETE keeps the
// subscription, RENAME moves those of the mailbox and the names under it,
// and all of it survives a restart.
func TestSubscriptionsApartFromMailboxes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	k := sealtest.Keys(t)
	st, ms := openLocal(t, path, k, nil)
	if got := ms.Subscriptions(); !slices.Equal(got, specialNames) {
		t.Fatalf("a new account's subscriptions: %v", got)
	}

	// A name that does not exist.
	if err := ms.Subscribe(ctx, "Later", true); err != nil {
		t.Fatal(err)
	}
	if _, err := ms.Mailbox("Later"); !errors.Is(err, ErrNoMailbox) {
		t.Fatalf("SUBSCRIBE made the mailbox: %v", err)
	}
	if err := ms.CreateMailbox(ctx, "Later"); err != nil {
		t.Fatal(err)
	}
	if !subscribed(t, ms, "Later") {
		t.Error("a mailbox made under a subscribed name is not subscribed")
	}
	if err := ms.Subscribe(ctx, "Never", false); !errors.Is(err, ErrNoMailbox) {
		t.Errorf("UNSUBSCRIBE of a name neither subscribed nor a mailbox: %v", err)
	}
	if err := ms.Subscribe(ctx, "Bad*", true); err == nil {
		t.Error("SUBSCRIBE of a name with a wildcard succeeded")
	}

	// DELETE keeps the subscription.
	if err := ms.DeleteMailbox(ctx, "Later"); err != nil {
		t.Fatal(err)
	}
	if got := ms.Subscriptions(); !slices.Equal(got, with("Later")) {
		t.Errorf("after DELETE: %v", got)
	}

	// RENAME moves the subscriptions of the mailbox and the names under
	// it, and of no other.
	for _, n := range []string{"Work/2026", "Work/Old", "Workshop"} {
		if err := ms.CreateMailbox(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := ms.Subscribe(ctx, "Work/Old", false); err != nil {
		t.Fatal(err)
	}
	if err := ms.Subscribe(ctx, "Work/Gone", true); err != nil {
		t.Fatal(err)
	}
	if err := ms.RenameMailbox(ctx, "Work", "Job"); err != nil {
		t.Fatal(err)
	}
	want := with("Later", "Job", "Job/2026", "Job/Gone", "Workshop")
	if got := ms.Subscriptions(); !slices.Equal(got, want) {
		t.Errorf("after RENAME: %v, want %v", got, want)
	}
	if subscribed(t, ms, "Job/Old") || !subscribed(t, ms, "Job/2026") || !subscribed(t, ms, "Job") {
		t.Error("after RENAME, a mailbox's subscription is not its old name's")
	}

	// Renaming INBOX copies its subscription; INBOX stays subscribed.
	if err := ms.RenameMailbox(ctx, "INBOX", "Old mail"); err != nil {
		t.Fatal(err)
	}
	want = with("Later", "Job", "Job/2026", "Job/Gone", "Workshop", "Old mail")
	if got := ms.Subscriptions(); !slices.Equal(got, want) {
		t.Errorf("after RENAME of INBOX: %v, want %v", got, want)
	}

	// UNSUBSCRIBE, and a restart.
	if err := ms.Subscribe(ctx, "Junk", false); err != nil {
		t.Fatal(err)
	}
	want = slices.DeleteFunc(want, func(n string) bool { return n == "Junk" })
	_, ms = reopen(t, st, ms, path, k, nil)
	if got := ms.Subscriptions(); !slices.Equal(got, want) {
		t.Errorf("after a restart: %v, want %v", got, want)
	}
	if subscribed(t, ms, "Junk") || !subscribed(t, ms, "Sent") {
		t.Error("after a restart, MailboxInfo.Subscribed is wrong")
	}
}

// A device whose subscriptions were kept in the mailbox documents (before
// the subscriptions document) carries them over at its first Open, once,
// and adds them to the document another device made.
func TestSubscriptionsMigrate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	k := sealtest.Keys(t)
	st, ms := openLocal(t, path, k, nil)
	for _, n := range []string{"Kept", "Dropped"} {
		if err := ms.CreateMailbox(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	// As an older bitmaskd left it: "Kept" and Sent subscribed in their
	// documents, the rest not; another device's document names "Other";
	// this device has not carried its own over.
	for _, n := range append(slices.Clone(specialNames), "Kept", "Dropped") {
		md := mailboxDoc{Type: typeMailbox, Name: n, Subscribed: n == "Kept" || n == "Sent"}
		body, _ := json.Marshal(md)
		if err := ms.docs.Put(ms.mailboxDocID(n), body); err != nil {
			t.Fatal(err)
		}
	}
	body, _ := json.Marshal(subscriptionsDoc{Type: typeSubscriptions, Names: []string{"Other"}})
	if err := ms.docs.Put(ms.subscriptionsDocID(), body); err != nil {
		t.Fatal(err)
	}
	err := st.Update(func(tx *localstore.Tx) error { return tx.Delete(bucketState, keySubsMigrated) })
	if err != nil {
		t.Fatal(err)
	}
	st, ms = reopen(t, st, ms, path, k, nil)
	want := []string{"Kept", "Other", "Sent"}
	if got := ms.Subscriptions(); !slices.Equal(got, want) {
		t.Fatalf("carried over: %v, want %v", got, want)
	}
	if !subscribed(t, ms, "Kept") || subscribed(t, ms, "Dropped") {
		t.Error("MailboxInfo.Subscribed after carrying over is wrong")
	}
	// Once: what is unsubscribed after stays so.
	if err := ms.Subscribe(ctx, "Kept", false); err != nil {
		t.Fatal(err)
	}
	_, ms = reopen(t, st, ms, path, k, nil)
	if got := ms.Subscriptions(); !slices.Equal(got, []string{"Other", "Sent"}) {
		t.Errorf("after a second Open: %v", got)
	}
}

// The subscriptions document changed by sync (another device) is
// applied: the worker takes it like any other document.
func TestSubscriptionsFollowSync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	k := sealtest.Keys(t)
	_, ms := openLocal(t, path, k, nil)
	events, stop := ms.Watch("")
	defer stop()
	body, _ := json.Marshal(subscriptionsDoc{Type: typeSubscriptions, Names: []string{"From elsewhere", "INBOX"}})
	if err := ms.docs.Put(ms.subscriptionsDocID(), body); err != nil {
		t.Fatal(err)
	}
	ms.drain(context.Background())
	if got := ms.Subscriptions(); !slices.Equal(got, []string{"From elsewhere", "INBOX"}) {
		t.Errorf("after sync: %v", got)
	}
	if ev := <-events; ev.Kind != EventMailboxes {
		t.Errorf("event %+v", ev)
	}
	if subscribed(t, ms, "Sent") {
		t.Error("Sent still subscribed")
	}
	// Deleted (deletion wins a merge): nothing is subscribed; the next
	// SUBSCRIBE makes it again.
	if err := ms.docs.Delete(ms.subscriptionsDocID()); err != nil {
		t.Fatal(err)
	}
	ms.drain(context.Background())
	if got := ms.Subscriptions(); len(got) != 0 {
		t.Errorf("after deletion: %v", got)
	}
	if err := ms.Subscribe(context.Background(), "Sent", true); err != nil {
		t.Fatal(err)
	}
	if got := ms.Subscriptions(); !slices.Equal(got, []string{"Sent"}) {
		t.Errorf("after SUBSCRIBE: %v", got)
	}
}
