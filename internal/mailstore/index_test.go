package mailstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/pkg/seal"
	"github.com/bitmask-go/bitmask/pkg/seal/sealtest"
)

// The per-device index: what is on disk must give back, at the next
// Open, every mailbox's UIDVALIDITY and UIDNEXT and every message's UID,
// flags and metadata, with slots that keep UID order in file order.

// subjectIndexer is an Indexer whose metadata names the message's first
// line, and which has none for a message whose first line says "nometa".
func subjectIndexer(raw []byte) ([]byte, error) {
	first, _, _ := bytes.Cut(raw, []byte("\r\n"))
	if bytes.Contains(first, []byte("nometa")) {
		return nil, nil
	}
	return append([]byte("meta of "), first...), nil
}

func subjectMsg(subject string) []byte {
	return []byte("Subject: " + subject + "\r\n\r\nbody of " + subject + "\r\n")
}

// snapshot is what the index gives a session of every mailbox: its
// UIDVALIDITY, UIDNEXT and counts, its messages in UID order and each
// message's metadata (or that it has none), and the special use and
// subscription its document gives it.
func snapshot(t *testing.T, ms *Store) string {
	t.Helper()
	var b strings.Builder
	for _, info := range ms.Mailboxes() {
		fmt.Fprintf(&b, "%s uidvalidity=%d uidnext=%d messages=%d unseen=%d special=%q subscribed=%v\n", info.Name, info.UIDValidity, info.UIDNext, info.Messages, info.Unseen, info.Special, info.Subscribed)
		msgs, err := ms.Messages(info.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			meta, err := ms.Meta(m.ID)
			fmt.Fprintf(&b, "  %d %s %v %d %s meta=%q err=%v\n", m.UID, m.ID, m.Flags, m.Size, m.Date.Format(time.RFC3339), meta, err)
		}
	}
	return b.String()
}

// slotOrder reads the index file in slot order and fails the test unless,
// within each mailbox, UIDs grow with slots (a FETCH in UID order reads
// the file forwards). It returns the highest slot.
func slotOrder(t *testing.T, st *localstore.Store) uint64 {
	t.Helper()
	var last uint64
	lastUID := map[string]uint32{}
	err := st.View(func(tx *localstore.Tx) error {
		return tx.ForEachSeq(bucketMsg, func(slot uint64, v []byte) error {
			var ms msgState
			if err := json.Unmarshal(v, &ms); err != nil {
				return err
			}
			if ms.UID <= lastUID[ms.Mbox] {
				t.Errorf("%s: UID %d in slot %d comes after UID %d", ms.Mbox, ms.UID, slot, lastUID[ms.Mbox])
			}
			lastUID[ms.Mbox] = ms.UID
			last = slot
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return last
}

// fillMailboxes stores messages the ways a client and incoming mail do
// (append, batch, copy, move, flags), one of them without metadata.
func fillMailboxes(t *testing.T, ms *Store) {
	t.Helper()
	ctx := context.Background()
	for i, subject := range []string{"one", "two nometa", "three", "four"} {
		if _, _, err := ms.Append(ctx, "INBOX", subjectMsg(subject), []string{`\Flagged`}, time.Date(2026, 1, i+1, 0, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
	}
	batch := []NewMessage{{Raw: subjectMsg("five")}, {ID: "chosenid", Raw: subjectMsg("six"), Flags: []string{`\Seen`}}}
	if _, err := ms.AppendBatch(ctx, "INBOX", batch); err != nil {
		t.Fatal(err)
	}
	if err := ms.CreateMailbox(ctx, "Work/2026"); err != nil {
		t.Fatal(err)
	}
	if err := ms.Subscribe(ctx, "Junk", false); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := ms.Move(ctx, "INBOX", []uint32{2, 4}, "Work/2026"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := ms.Copy(ctx, "INBOX", []uint32{1}, "Archive"); err != nil {
		t.Fatal(err)
	}
	if _, err := ms.StoreFlags(ctx, "INBOX", []uint32{3, 5}, FlagsAdd, []string{`\Seen`, "$Label1"}); err != nil {
		t.Fatal(err)
	}
}

// openFilled opens a local mail store at path, indexed by
// subjectIndexer, and fills it (fillMailboxes) with every change applied;
// it returns the store and what it then holds (snapshot).
func openFilled(t *testing.T, path string, k *seal.Keys) (*localstore.Store, *Store, string) {
	t.Helper()
	st, ms := openLocal(t, path, k, subjectIndexer)
	fillMailboxes(t, ms)
	ms.drain(context.Background())
	return st, ms, snapshot(t, ms)
}

// highestSlot is the highest slot in the file (slotOrder), failing the
// test unless it is the last one ms handed out.
func highestSlot(t *testing.T, ms *Store, st *localstore.Store) uint64 {
	t.Helper()
	last := slotOrder(t, st)
	if ms.lastSlot != last {
		t.Fatalf("last slot handed out %d, highest on disk %d", ms.lastSlot, last)
	}
	return last
}

// unchanged fails the test unless ms still holds what it held (before);
// when says after what.
func unchanged(t *testing.T, ms *Store, before, when string) {
	t.Helper()
	if after := snapshot(t, ms); after != before {
		t.Fatalf("%s:\n%s\nwas\n%s", when, after, before)
	}
}

// TestIndexSurvivesReopen: the index read back at Open is the index
// written, and the next message gets the next UID and a slot after
// every other.
func TestIndexSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	k := sealtest.Keys(t)
	ctx := context.Background()
	st, ms, before := openFilled(t, path, k)
	lastSlot := highestSlot(t, ms, st)
	if !strings.Contains(before, `meta=""`) || !strings.Contains(before, `meta="meta of Subject: one"`) {
		t.Fatalf("the test's messages are not as meant:\n%s", before)
	}

	st, ms = reopen(t, st, ms, path, k, subjectIndexer)
	unchanged(t, ms, before, "after reopening")
	if ms.lastSlot != lastSlot {
		t.Fatalf("last slot after reopening %d, want %d", ms.lastSlot, lastSlot)
	}
	info, _ := ms.Mailbox("Work/2026")
	m, uv, err := ms.Append(ctx, "Work/2026", subjectMsg("seven"), nil, time.Time{})
	if err != nil || m.UID != info.UIDNext || uv != info.UIDValidity {
		t.Fatalf("append after reopening: UID %d UIDVALIDITY %d (%v), want %d %d", m.UID, uv, err, info.UIDNext, info.UIDValidity)
	}
	if got := slotOrder(t, st); got != lastSlot+1 {
		t.Fatalf("the new message's slot is %d, want %d", got, lastSlot+1)
	}
}

// TestUIDValidityNeverReused: a mailbox deleted and made again, in the
// same run or after a restart, gets a greater UIDVALIDITY, so a client's
// cached UIDs of the old one are never taken for the new one's.
func TestUIDValidityNeverReused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	k := sealtest.Keys(t)
	ctx := context.Background()
	st, ms := openLocal(t, path, k, nil)
	uidValidity := func() uint32 {
		t.Helper()
		info, err := ms.Mailbox("Projects")
		if err != nil {
			t.Fatal(err)
		}
		return info.UIDValidity
	}
	var seen []uint32
	for i := range 3 {
		if i == 2 {
			st, ms = reopen(t, st, ms, path, k, nil)
			if uv := uidValidity(); uv != seen[len(seen)-1] {
				t.Fatalf("UIDVALIDITY %d after reopening, was %d", uv, seen[len(seen)-1])
			}
		}
		if i > 0 {
			if err := ms.DeleteMailbox(ctx, "Projects"); err != nil {
				t.Fatal(err)
			}
		}
		if err := ms.CreateMailbox(ctx, "Projects"); err != nil {
			t.Fatal(err)
		}
		uv := uidValidity()
		if len(seen) > 0 && uv <= seen[len(seen)-1] {
			t.Fatalf("UIDVALIDITY %d after %v", uv, seen)
		}
		seen = append(seen, uv)
	}
}

// TestDeletedMailboxLeavesNoIndex: deleting a mailbox removes its
// messages' index entries and metadata and its own entry from the file,
// while the other mailboxes' messages keep theirs.
func TestDeletedMailboxLeavesNoIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	k := sealtest.Keys(t)
	ctx := context.Background()
	st, ms := openLocal(t, path, k, subjectIndexer)
	if err := ms.CreateMailbox(ctx, "Old"); err != nil {
		t.Fatal(err)
	}
	for _, subject := range []string{"a", "b", "c"} {
		if _, _, err := ms.Append(ctx, "Old", subjectMsg(subject), nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	kept, _, err := ms.Append(ctx, "INBOX", subjectMsg("kept"), nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ms.DeleteMailbox(ctx, "Old"); err != nil {
		t.Fatal(err)
	}
	count := func(bucket string) (n int) {
		t.Helper()
		err := st.View(func(tx *localstore.Tx) error {
			return tx.ForEachSeq(bucket, func(uint64, []byte) error { n++; return nil })
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n, m := count(bucketMsg), count(bucketMeta); n != 1 || m != 1 {
		t.Fatalf("%d index entries and %d metadata entries left, want 1 and 1", n, m)
	}
	err = st.View(func(tx *localstore.Tx) error {
		if _, err := tx.Get(bucketMbox, "Old"); err == nil {
			t.Error("the deleted mailbox's entry is still in the index")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if meta, err := ms.Meta(kept.ID); err != nil || string(meta) != "meta of Subject: kept" {
		t.Fatalf("the other message's metadata: %q %v", meta, err)
	}
	_, ms = reopen(t, st, ms, path, k, subjectIndexer)
	if _, err := ms.Mailbox("Old"); !errors.Is(err, ErrNoMailbox) {
		t.Fatalf("the deleted mailbox after reopening: %v", err)
	}
}
