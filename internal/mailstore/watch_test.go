package mailstore

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/pkg/seal/sealtest"
)

func nextEvent(t *testing.T, events <-chan Event) Event {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("the watch ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
	}
	return Event{}
}

// TestWatchInOrder: a watcher gets its mailbox's events in order, with
// the origin of the session that made them; events queue (the store
// never waits for a slow reader); the mailbox list has its own watchers;
// stopping closes the channel.
func TestWatchInOrder(t *testing.T) {
	_, ms := openLocal(t, filepath.Join(t.TempDir(), "s.db"), sealtest.Keys(t), nil)
	ms.Close() // no worker: every event comes from the calls below
	events, stop := ms.Watch("inbox")
	list, stopList := ms.Watch("")
	defer stopList()
	session := "session 1"
	ctx := WithOrigin(context.Background(), session)

	const n = 20
	for i := range n { // nobody reads meanwhile
		if _, _, err := ms.Append(ctx, "INBOX", fmt.Appendf(nil, "Subject: %d\r\n\r\nx", i), nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ms.StoreFlags(context.Background(), "INBOX", []uint32{2}, FlagsAdd, []string{`\Deleted`}); err != nil {
		t.Fatal(err)
	}
	if _, err := ms.Expunge(ctx, "INBOX", nil); err != nil {
		t.Fatal(err)
	}
	if err := ms.CreateMailbox(ctx, "Elsewhere"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ms.Append(ctx, "Elsewhere", []byte("Subject: not INBOX\r\n\r\nx"), nil, time.Time{}); err != nil {
		t.Fatal(err)
	}

	for i := range n {
		ev := nextEvent(t, events)
		if ev.Kind != EventAdded || ev.Mailbox != "INBOX" || ev.Message.UID != uint32(i+1) || ev.Origin != session {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}
	if ev := nextEvent(t, events); ev.Kind != EventFlags || ev.Message.UID != 2 || ev.Origin != nil {
		t.Fatalf("flags event: %+v", ev)
	}
	if ev := nextEvent(t, events); ev.Kind != EventExpunged || ev.Message.UID != 2 || ev.Origin != session {
		t.Fatalf("expunge event: %+v", ev)
	}
	if ev := nextEvent(t, list); ev.Kind != EventMailboxes || ev.Mailbox != "Elsewhere" {
		t.Fatalf("mailbox list event: %+v", ev)
	}
	stop()
	stop() // twice is fine
	select {
	case ev, ok := <-events:
		if ok {
			t.Fatalf("an event after the last one of INBOX: %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the channel stayed open after stop")
	}
}
