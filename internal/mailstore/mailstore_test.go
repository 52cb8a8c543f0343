package mailstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/daemon"
	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/mailstore"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// These tests run the mail store as the daemon opens it (with the IMAP
// server's indexer), against a real provider: between devices and across
// restarts. The package's own tests run it on a local engine.

const password = "correct horse battery staple"

// open is the account's mail store, as the daemon opened it (with the
// IMAP server's indexer).
func open(t *testing.T, a *daemon.Account) *mailstore.Store {
	t.Helper()
	return a.Mail
}

func msg(subject string) []byte {
	return []byte("From: a@example.test\r\nTo: b@example.test\r\nSubject: " + subject + "\r\n\r\nbody of " + subject + "\r\n")
}

func find(ms *mailstore.Store, mbox, id string) (mailstore.Message, bool) {
	msgs, err := ms.Messages(mbox)
	if err != nil {
		return mailstore.Message{}, false
	}
	for _, m := range msgs {
		if m.ID == id {
			return m, true
		}
	}
	return mailstore.Message{}, false
}

func TestTwoDevicesMail(t *testing.T) {
	ctx := context.Background()
	p := testenv.StartProvider(t, testenv.Options{})
	da := testenv.NewDaemon(t, testenv.DaemonOptions{})
	db := testenv.NewDaemon(t, testenv.DaemonOptions{})
	addr := "mia@" + testenv.Domain
	A := testenv.NewUser(t, da, p, addr)
	B, err := db.Login(ctx, addr, []byte(password), p.Ref())
	if err != nil {
		t.Fatal(err)
	}
	ma, mb := open(t, A), open(t, B)
	for _, name := range []string{"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"} {
		if _, err := ma.Mailbox(name); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	events, stop := mb.Watch("INBOX")
	defer stop()

	m1, uv, err := ma.Append(ctx, "inbox", msg("one"), []string{`\Seen`}, time.Now())
	if err != nil || m1.UID != 1 || uv == 0 {
		t.Fatalf("append: %+v %d %v", m1, uv, err)
	}
	select {
	case ev := <-events:
		if ev.Kind != mailstore.EventAdded || ev.Message.ID != m1.ID {
			t.Fatalf("event %+v", ev)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("B was not told of the new message")
	}
	raw, err := mb.Raw(ctx, m1.ID)
	if err != nil || string(raw) != string(msg("one")) {
		t.Fatalf("raw on B: %q %v", raw, err)
	}
	if meta, err := mb.Meta(m1.ID); err != nil || !bytes.Contains(meta, []byte("Subject: one")) {
		t.Fatalf("meta on B: %q %v", meta, err)
	}

	// Flags set on B reach A, merged per flag with A's.
	if _, err := mb.StoreFlags(ctx, "INBOX", []uint32{1}, mailstore.FlagsAdd, []string{`\Flagged`}); err != nil {
		t.Fatal(err)
	}
	if _, err := ma.StoreFlags(ctx, "INBOX", []uint32{1}, mailstore.FlagsAdd, []string{`\Answered`}); err != nil {
		t.Fatal(err)
	}
	want := []string{`\Answered`, `\Flagged`, `\Seen`}
	for name, ms := range map[string]*mailstore.Store{"A": ma, "B": mb} {
		testenv.Eventually(t, 20*time.Second, "merged flags on "+name, func() bool {
			m, ok := find(ms, "INBOX", m1.ID)
			return ok && slices.Equal(m.Flags, want)
		})
	}

	// Move on A shows on B; expunge on B shows on A.
	if err := ma.CreateMailbox(ctx, "Work/Projects"); err != nil {
		t.Fatal(err)
	}
	src, dst, _, err := ma.Move(ctx, "INBOX", []uint32{1}, "Work/Projects")
	if err != nil || len(src) != 1 || len(dst) != 1 {
		t.Fatalf("move: %v %v %v", src, dst, err)
	}
	testenv.Eventually(t, 20*time.Second, "move on B", func() bool {
		_, inInbox := find(mb, "INBOX", m1.ID)
		_, moved := find(mb, "Work/Projects", m1.ID)
		return !inInbox && moved
	})
	if _, err := mb.Mailbox("Work"); err != nil {
		t.Fatal("parent mailbox did not sync:", err)
	}
	m, _ := find(mb, "Work/Projects", m1.ID)
	if _, err := mb.StoreFlags(ctx, "Work/Projects", []uint32{m.UID}, mailstore.FlagsAdd, []string{`\Deleted`}); err != nil {
		t.Fatal(err)
	}
	if got, err := mb.Expunge(ctx, "Work/Projects", nil); err != nil || len(got) != 1 {
		t.Fatalf("expunge: %v %v", got, err)
	}
	testenv.Eventually(t, 20*time.Second, "expunge on A", func() bool {
		_, ok := find(ma, "Work/Projects", m1.ID)
		return !ok
	})

	// The same incoming message stored on both devices is one message.
	id := "incoming-0001"
	if _, _, err := ma.AppendWithID(ctx, id, "INBOX", msg("twice"), nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mb.AppendWithID(ctx, id, "INBOX", msg("twice"), nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	for name, ms := range map[string]*mailstore.Store{"A": ma, "B": mb} {
		if err := ms.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		msgs, _ := ms.Messages("INBOX")
		if len(msgs) != 1 {
			t.Fatalf("%s has %d messages in INBOX, want 1", name, len(msgs))
		}
	}
}

func TestUIDsStableAcrossRestart(t *testing.T) {
	ctx := context.Background()
	p := testenv.StartProvider(t, testenv.Options{})
	dir := t.TempDir()
	d := testenv.NewDaemon(t, testenv.DaemonOptions{Dir: dir})
	addr := "noah@" + testenv.Domain
	A := testenv.NewUser(t, d, p, addr)
	ms := open(t, A)
	for i := range 5 {
		if _, _, err := ms.Append(ctx, "INBOX", msg(fmt.Sprint(i)), nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := ms.Messages("INBOX")
	info, _ := ms.Mailbox("INBOX")
	if err := ms.DeleteMailbox(ctx, "Archive"); err != nil {
		t.Fatal(err)
	}
	archiveUV := uint32(0)
	if err := ms.CreateMailbox(ctx, "Archive"); err != nil {
		t.Fatal(err)
	} else {
		i, _ := ms.Mailbox("Archive")
		archiveUV = i.UIDValidity
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	_, A2 := testenv.LoginAgain(t, p, dir, addr)
	ms2 := open(t, A2)
	after, _ := ms2.Messages("INBOX")
	info2, _ := ms2.Mailbox("INBOX")
	if fmt.Sprint(before) != fmt.Sprint(after) || info.UIDValidity != info2.UIDValidity {
		t.Fatalf("after restart:\n%v %d\n%v %d", before, info.UIDValidity, after, info2.UIDValidity)
	}
	if i, _ := ms2.Mailbox("Archive"); i.UIDValidity != archiveUV {
		t.Fatalf("Archive UIDVALIDITY changed across restart")
	}
	// A recreated mailbox never reuses a UIDVALIDITY.
	if err := ms2.DeleteMailbox(ctx, "Archive"); err != nil {
		t.Fatal(err)
	}
	if err := ms2.CreateMailbox(ctx, "Archive"); err != nil {
		t.Fatal(err)
	}
	if i, _ := ms2.Mailbox("Archive"); i.UIDValidity <= archiveUV {
		t.Fatalf("UIDVALIDITY reused: %d after %d", i.UIDValidity, archiveUV)
	}
}

// TestLegacyIndexMigrates: an index kept by document id (as bitmaskd
// wrote it before slots) is moved to slots at Open, with every UID, flag
// and metadata kept.
func TestLegacyIndexMigrates(t *testing.T) {
	ctx := context.Background()
	p := testenv.StartProvider(t, testenv.Options{})
	dir := t.TempDir()
	d := testenv.NewDaemon(t, testenv.DaemonOptions{Dir: dir})
	addr := "olga@" + testenv.Domain
	A := testenv.NewUser(t, d, p, addr)
	ms := open(t, A)
	for i := range 6 {
		if _, _, err := ms.Append(ctx, "INBOX", msg(fmt.Sprint(i)), []string{`\Flagged`}, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, _, err := ms.Move(ctx, "INBOX", []uint32{2, 4}, "Archive"); err != nil {
		t.Fatal(err)
	}
	before := map[string][]mailstore.Message{}
	metas := map[string][]byte{}
	for _, mb := range []string{"INBOX", "Archive"} {
		before[mb], _ = ms.Messages(mb)
		for _, m := range before[mb] {
			metas[m.ID], _ = ms.Meta(m.ID)
		}
	}
	path, keys := A.StorePath(), A.Keys()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// Write the index back in the old form.
	st, err := localstore.Open(path, keys)
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(func(tx *localstore.Tx) error {
		type entry struct {
			id   string
			st   []byte
			meta []byte
		}
		var all []entry
		err := tx.ForEachSeq("mail-index", func(slot uint64, v []byte) error {
			var ms struct {
				ID string `json:"i"`
			}
			if err := json.Unmarshal(v, &ms); err != nil {
				return err
			}
			meta, _ := tx.GetSeq("mail-metadata", slot)
			all = append(all, entry{ms.ID, v, meta})
			return nil
		})
		if err != nil {
			return err
		}
		for _, e := range all {
			if err := tx.Put("mail-msg", e.id, e.st); err != nil {
				return err
			}
			if err := tx.Put("mail-meta", e.id, e.meta); err != nil {
				return err
			}
		}
		if err := tx.DeleteBucket("mail-index"); err != nil {
			return err
		}
		return tx.DeleteBucket("mail-metadata")
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, A2 := testenv.LoginAgain(t, p, dir, addr)
	ms2 := open(t, A2)
	for _, mb := range []string{"INBOX", "Archive"} {
		after, _ := ms2.Messages(mb)
		if fmt.Sprint(after) != fmt.Sprint(before[mb]) {
			t.Fatalf("%s after migration:\n%v\nwas\n%v", mb, after, before[mb])
		}
		for _, m := range after {
			if meta, err := ms2.Meta(m.ID); err != nil || !bytes.Equal(meta, metas[m.ID]) {
				t.Fatalf("metadata of %s: %v", m.ID, err)
			}
		}
	}
	_ = A2.Store().View(func(tx *localstore.Tx) error {
		if n := tx.Count("mail-msg") + tx.Count("mail-meta"); n != 0 {
			t.Fatalf("%d entries left in the old buckets", n)
		}
		return nil
	})
	// New messages get slots after the migrated ones.
	if _, _, err := ms2.Append(ctx, "INBOX", msg("new"), nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := ms2.Messages("INBOX"); len(got) != len(before["INBOX"])+1 {
		t.Fatalf("after append: %v", got)
	}
}

// TestChangesSurviveACrashBeforeIndexing: a message document committed
// but not indexed (the daemon died in between) is indexed at the next
// start from docsync's list of changes, and a clean start leaves that
// list empty, so the next one reads nothing.
func TestChangesSurviveACrashBeforeIndexing(t *testing.T) {
	ctx := context.Background()
	p := testenv.StartProvider(t, testenv.Options{})
	dir := t.TempDir()
	d := testenv.NewDaemon(t, testenv.DaemonOptions{Dir: dir})
	addr := "pia@" + testenv.Domain
	A := testenv.NewUser(t, d, p, addr)
	m1, _, err := A.Mail.Append(ctx, "INBOX", msg("indexed"), nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// The worker takes what the append listed.
	listed := func() bool {
		changes, err := A.Docs.Changed(0)
		return err != nil || slices.ContainsFunc(changes, func(c docsync.Change) bool { return c.ID == m1.ID })
	}
	for deadline := time.Now().Add(5 * time.Second); listed() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if listed() {
		t.Fatal("an indexed message is still listed as changed")
	}
	// What Append does before it indexes, and nothing after (with the
	// mail store's worker stopped, as by the crash).
	A.Mail.Close()
	raw := msg("written, never indexed")
	body, _ := json.Marshal(map[string]any{
		"type": "message", "mbox": "INBOX", "blob": A.Docs.BlobID(raw),
		"size": len(raw), "date": time.Now().UTC().Truncate(time.Second), "flags": []string{`\Seen`},
	})
	if err := A.Docs.PutBlobsAndDocs([][]byte{raw}, []docsync.Doc{{ID: "crashedbeforeindexing", Body: body}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := find(A.Mail, "INBOX", "crashedbeforeindexing"); ok {
		t.Fatal("indexed before the restart: the test shows nothing")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	_, A2 := testenv.LoginAgain(t, p, dir, addr)
	m, ok := find(A2.Mail, "INBOX", "crashedbeforeindexing")
	if !ok || !slices.Equal(m.Flags, []string{`\Seen`}) {
		t.Fatalf("the unindexed message after restart: %+v %v", m, ok)
	}
	if got, _ := A2.Mail.Messages("INBOX"); len(got) != 2 {
		t.Fatalf("INBOX: %v", got)
	}
	if changes, err := A2.Docs.Changed(0); err != nil || len(changes) != 0 {
		t.Fatalf("changes left after the start: %v %v", changes, err)
	}
}
