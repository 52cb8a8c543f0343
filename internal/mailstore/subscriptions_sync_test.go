package mailstore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/mailstore"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// Two devices change the subscriptions at the same time: the document
// merges per name (docs/sync.md), so both end with what each subscribed
// and without what each unsubscribed; a mailbox deleted on one keeps its
// subscription on both.
func TestSubscriptionsTwoDevices(t *testing.T) {
	ctx := context.Background()
	p := testenv.StartProvider(t, testenv.Options{})
	da := testenv.NewDaemon(t, testenv.DaemonOptions{})
	db := testenv.NewDaemon(t, testenv.DaemonOptions{})
	addr := "ivy@" + testenv.Domain
	A := testenv.NewUser(t, da, p, addr)
	B, err := db.Login(ctx, addr, []byte(password), p.Ref())
	if err != nil {
		t.Fatal(err)
	}
	ma, mb := open(t, A), open(t, B)
	if err := ma.CreateMailbox(ctx, "Work"); err != nil {
		t.Fatal(err)
	}
	for _, ms := range []*mailstore.Store{ma, mb} {
		if err := ms.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 20*time.Second, "Work on B", func() bool { _, err := mb.Mailbox("Work"); return err == nil })

	if err := ma.Subscribe(ctx, "Only on A", true); err != nil {
		t.Fatal(err)
	}
	if err := ma.Subscribe(ctx, "Junk", false); err != nil {
		t.Fatal(err)
	}
	if err := mb.Subscribe(ctx, "Only on B", true); err != nil {
		t.Fatal(err)
	}
	if err := mb.DeleteMailbox(ctx, "Work"); err != nil {
		t.Fatal(err)
	}
	want := []string{"Archive", "Drafts", "INBOX", "Only on A", "Only on B", "Sent", "Trash", "Work"}
	for name, ms := range map[string]*mailstore.Store{"A": ma, "B": mb} {
		testenv.Eventually(t, 20*time.Second, "merged subscriptions on "+name, func() bool {
			_ = ms.Sync(ctx)
			_, err := ms.Mailbox("Work")
			return slices.Equal(ms.Subscriptions(), want) && err != nil
		})
	}
}
