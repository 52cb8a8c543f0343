package mailstore

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/pkg/seal/sealtest"
)

// MODSEQs, \Recent and the counts of MailboxInfo.

func info(t *testing.T, ms *Store, name string) MailboxInfo {
	t.Helper()
	mi, err := ms.Mailbox(name)
	if err != nil {
		t.Fatal(err)
	}
	return mi
}

func byUID(t *testing.T, ms *Store, mbox string, uid uint32) Message {
	t.Helper()
	msgs, err := ms.Messages(mbox)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.UID == uid {
			return m
		}
	}
	t.Fatalf("%s has no UID %d", mbox, uid)
	return Message{}
}

// modseqs is every message's UID, flags and MODSEQ, and every mailbox's
// HIGHESTMODSEQ: what must not change across a restart.
func modseqs(t *testing.T, ms *Store) string {
	t.Helper()
	var b strings.Builder
	for _, mi := range ms.Mailboxes() {
		fmt.Fprintf(&b, "%s uidvalidity=%d highestmodseq=%d\n", mi.Name, mi.UIDValidity, mi.HighestModSeq)
		msgs, err := ms.Messages(mi.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			fmt.Fprintf(&b, "  %d %v modseq=%d\n", m.UID, m.Flags, m.ModSeq)
		}
		fmt.Fprintf(&b, "  vanished %v\n", ms.Vanished(mi.Name, 0))
	}
	return b.String()
}

// TestModSeqs: an append, a flag change and an expunge each raise the
// mailbox's HIGHESTMODSEQ and give the message (or the expunge) that
// MODSEQ, in the event too; a STORE that changes nothing raises nothing;
// a restart changes no MODSEQ and the next change goes above all.
func TestModSeqs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	k := sealtest.Keys(t)
	st, ms := openLocal(t, path, k, subjectIndexer)
	fresh := info(t, ms, "INBOX").HighestModSeq
	if fresh < 1 {
		t.Fatalf("a fresh mailbox has HIGHESTMODSEQ %d", fresh)
	}
	events, stop := ms.Watch("INBOX")
	defer stop()

	last := fresh
	higher := func(what string, q uint64) {
		t.Helper()
		if q <= last {
			t.Fatalf("%s: MODSEQ %d, not above %d", what, q, last)
		}
		if h := info(t, ms, "INBOX").HighestModSeq; h != q {
			t.Fatalf("%s: HIGHESTMODSEQ %d, want %d", what, h, q)
		}
		last = q
	}
	for i := range 3 {
		m, _, err := ms.Append(ctx, "INBOX", subjectMsg(fmt.Sprint("m", i)), nil, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		higher("append", m.ModSeq)
		if ev := nextEvent(t, events); ev.Kind != EventAdded || ev.ModSeq != m.ModSeq || ev.Message.ModSeq != m.ModSeq {
			t.Fatalf("append event %+v, want MODSEQ %d", ev, m.ModSeq)
		}
	}
	out, err := ms.StoreFlags(ctx, "INBOX", []uint32{2}, FlagsAdd, []string{`\Seen`})
	if err != nil {
		t.Fatal(err)
	}
	higher("store", out[0].ModSeq)
	if ev := nextEvent(t, events); ev.Kind != EventFlags || ev.ModSeq != out[0].ModSeq {
		t.Fatalf("flags event %+v, want MODSEQ %d", ev, out[0].ModSeq)
	}
	again, err := ms.StoreFlags(ctx, "INBOX", []uint32{2}, FlagsAdd, []string{`\Seen`})
	if err != nil {
		t.Fatal(err)
	}
	if again[0].ModSeq != out[0].ModSeq || info(t, ms, "INBOX").HighestModSeq != last {
		t.Fatalf("a STORE that changed nothing moved MODSEQs: %d -> %d", out[0].ModSeq, again[0].ModSeq)
	}
	if _, err := ms.StoreFlags(ctx, "INBOX", []uint32{3}, FlagsAdd, []string{`\Deleted`}); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, events)
	last = info(t, ms, "INBOX").HighestModSeq
	before := last
	if _, err := ms.Expunge(ctx, "INBOX", nil); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, events)
	if ev.Kind != EventExpunged || ev.Message.UID != 3 {
		t.Fatalf("expunge event %+v", ev)
	}
	higher("expunge", ev.ModSeq)
	if got := ms.Vanished("INBOX", before); !slices.Equal(got, []uint32{3}) {
		t.Fatalf("vanished since %d: %v, want [3]", before, got)
	}
	if got := ms.Vanished("INBOX", last); len(got) != 0 {
		t.Fatalf("vanished since the expunge: %v, want none", got)
	}
	// A copy and a move bring a new MODSEQ into the destination; the
	// move's source gets one for the message that left.
	if _, _, _, err := ms.Move(ctx, "INBOX", []uint32{1}, "Archive"); err != nil {
		t.Fatal(err)
	}
	nextEvent(t, events)
	if q := info(t, ms, "INBOX").HighestModSeq; q <= last {
		t.Fatalf("a move out left HIGHESTMODSEQ at %d", q)
	}
	if got := ms.Vanished("INBOX", last); !slices.Equal(got, []uint32{1}) {
		t.Fatalf("vanished after the move: %v, want [1]", got)
	}
	if q := byUID(t, ms, "Archive", 1).ModSeq; q <= last {
		t.Fatalf("moved message has MODSEQ %d, not above %d", q, last)
	}
	ms.drain(ctx)
	want := modseqs(t, ms)
	highest := ms.lastModSeq

	st, ms = reopen(t, st, ms, path, k, subjectIndexer)
	if got := modseqs(t, ms); got != want {
		t.Fatalf("after a restart:\n%s\nwas\n%s", got, want)
	}
	m, _, err := ms.Append(ctx, "INBOX", subjectMsg("after"), nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if m.ModSeq <= highest {
		t.Fatalf("after a restart a change got MODSEQ %d, not above %d", m.ModSeq, highest)
	}
	_ = st
}

// TestModSeqFollowsSync: a flag change, a new message and an expunge
// that come from another device (documents changed by a pull) get new
// MODSEQs here, and their events carry them.
func TestModSeqFollowsSync(t *testing.T) {
	ctx := context.Background()
	_, ms := openLocal(t, filepath.Join(t.TempDir(), "s.db"), sealtest.Keys(t), subjectIndexer)
	m, _, err := ms.Append(ctx, "INBOX", subjectMsg("one"), nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	ms.drain(ctx)
	events, stop := ms.Watch("INBOX")
	defer stop()
	h := info(t, ms, "INBOX").HighestModSeq

	// Another device set \Flagged: the pull merges it into the document.
	err = ms.docs.Modify([]string{m.ID}, func(_ string, b []byte) ([]byte, bool, bool, error) {
		var md messageDoc
		if err := json.Unmarshal(b, &md); err != nil {
			return nil, false, false, err
		}
		md.Flags = append(md.Flags, `\Flagged`)
		nb, err := json.Marshal(md)
		return nb, false, false, err
	})
	if err != nil {
		t.Fatal(err)
	}
	ms.poke()
	ev := nextEvent(t, events)
	if ev.Kind != EventFlags || ev.ModSeq <= h || ev.Message.ModSeq != ev.ModSeq {
		t.Fatalf("synced flag change: %+v, want a MODSEQ above %d", ev, h)
	}
	if got := byUID(t, ms, "INBOX", 1); got.ModSeq != ev.ModSeq || !slices.Contains(got.Flags, `\Flagged`) {
		t.Fatalf("message after the synced change: %+v", got)
	}
	h = ev.ModSeq

	pulled(t, ms, map[string]string{"otherdevicemsg": "INBOX"})
	ms.poke()
	ev = nextEvent(t, events)
	if ev.Kind != EventAdded || ev.ModSeq <= h {
		t.Fatalf("synced new message: %+v, want a MODSEQ above %d", ev, h)
	}
	h = ev.ModSeq

	if err := ms.docs.Delete(m.ID); err != nil {
		t.Fatal(err)
	}
	ms.poke()
	ev = nextEvent(t, events)
	if ev.Kind != EventExpunged || ev.ModSeq <= h || info(t, ms, "INBOX").HighestModSeq != ev.ModSeq {
		t.Fatalf("synced expunge: %+v, want a MODSEQ above %d", ev, h)
	}
	if got := ms.Vanished("INBOX", h); !slices.Equal(got, []uint32{1}) {
		t.Fatalf("vanished: %v", got)
	}
}

// TestStoreFlagsIf: UNCHANGEDSINCE lets one of many concurrent writers
// that read the same MODSEQ change a message, and tells the others it
// failed; a message changed since is reported, one unchanged since is
// changed; a change to nothing keeps the MODSEQ.
func TestStoreFlagsIf(t *testing.T) {
	ctx := context.Background()
	_, ms := openLocal(t, filepath.Join(t.TempDir(), "s.db"), sealtest.Keys(t), subjectIndexer)
	for i := range 2 {
		if _, _, err := ms.Append(ctx, "INBOX", subjectMsg(fmt.Sprint("m", i)), nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 5 {
		q := byUID(t, ms, "INBOX", 1).ModSeq
		const writers = 6
		var wg sync.WaitGroup
		var mu sync.Mutex
		won, lost := 0, 0
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				kw := fmt.Sprintf("$r%dw%d", round, w)
				changed, failed, err := ms.StoreFlagsIf(ctx, "INBOX", []uint32{1}, FlagsAdd, []string{kw}, q)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				switch {
				case len(changed) == 1 && len(failed) == 0 && slices.Contains(changed[0].Flags, kw) && changed[0].ModSeq > q:
					won++
				case len(changed) == 0 && slices.Equal(failed, []uint32{1}):
					lost++
				default:
					t.Errorf("round %d: changed %+v failed %v", round, changed, failed)
				}
			}()
		}
		wg.Wait()
		if won != 1 || lost != writers-1 {
			t.Fatalf("round %d: %d writers changed the message and %d failed; want 1 and %d", round, won, lost, writers-1)
		}
	}
	// Message 2 is unchanged since its append, message 1 changed since.
	q2 := byUID(t, ms, "INBOX", 2).ModSeq
	changed, failed, err := ms.StoreFlagsIf(ctx, "INBOX", []uint32{1, 2, 99}, FlagsAdd, []string{`\Seen`}, q2)
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 1 || changed[0].UID != 2 || changed[0].ModSeq <= q2 || !slices.Equal(failed, []uint32{1}) {
		t.Fatalf("changed %+v failed %v", changed, failed)
	}
	now := changed[0].ModSeq
	changed, failed, err = ms.StoreFlagsIf(ctx, "INBOX", []uint32{2}, FlagsAdd, []string{`\Seen`}, now)
	if err != nil || len(changed) != 1 || changed[0].ModSeq != now || len(failed) != 0 {
		t.Fatalf("a change to nothing: changed %+v failed %v err %v; want MODSEQ kept at %d", changed, failed, err, now)
	}
	if _, failed, _ := ms.StoreFlagsIf(ctx, "INBOX", []uint32{2}, FlagsAdd, []string{`\Seen`}, 0); !slices.Equal(failed, []uint32{2}) {
		t.Fatalf("UNCHANGEDSINCE 0 let a message through: failed %v", failed)
	}
}

// TestRecent: the session that selects a mailbox claims what is above
// the floor, the next one nothing; a message that arrives is claimed
// once; the floor survives a restart.
func TestRecent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	k := sealtest.Keys(t)
	st, ms := openLocal(t, path, k, nil)
	for i := range 3 {
		if _, _, err := ms.Append(ctx, "INBOX", subjectMsg(fmt.Sprint("m", i)), nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := info(t, ms, "INBOX").Recent; n != 3 {
		t.Fatalf("recent %d, want 3", n)
	}
	if floor, err := ms.ClaimRecent(ctx, "inbox"); err != nil || floor != 0 {
		t.Fatalf("first claim: %d %v, want 0", floor, err)
	}
	if floor, err := ms.ClaimRecent(ctx, "INBOX"); err != nil || floor != 3 {
		t.Fatalf("second claim: %d %v, want 3", floor, err)
	}
	if n := info(t, ms, "INBOX").Recent; n != 0 {
		t.Fatalf("recent after the claims: %d", n)
	}
	m, _, err := ms.Append(ctx, "INBOX", subjectMsg("new"), nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if n := info(t, ms, "INBOX").Recent; n != 1 {
		t.Fatalf("recent after an arrival: %d, want 1", n)
	}
	if ok, err := ms.RaiseRecent(ctx, "INBOX", m.UID); !ok || err != nil {
		t.Fatalf("first raise: %v %v", ok, err)
	}
	if ok, err := ms.RaiseRecent(ctx, "INBOX", m.UID); ok || err != nil {
		t.Fatalf("second raise: %v %v", ok, err)
	}
	if _, err := ms.ClaimRecent(ctx, "nosuch"); err != ErrNoMailbox {
		t.Fatalf("claim in no mailbox: %v", err)
	}
	// A claim alone (no other write of the index) is kept too.
	if _, _, err := ms.Append(ctx, "Archive", subjectMsg("a"), nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	ms.drain(ctx)
	if floor, _ := ms.ClaimRecent(ctx, "Archive"); floor != 0 {
		t.Fatalf("Archive floor %d", floor)
	}

	st, ms = reopen(t, st, ms, path, k, nil)
	if floor, err := ms.ClaimRecent(ctx, "INBOX"); err != nil || floor != m.UID {
		t.Fatalf("after a restart the floor is %d (%v), want %d", floor, err, m.UID)
	}
	if floor, _ := ms.ClaimRecent(ctx, "Archive"); floor != 1 {
		t.Fatalf("after a restart the Archive floor is %d, want 1", floor)
	}
	_ = st
}

// TestCountsKeptAsMessagesChange: MailboxInfo's counts, kept as messages
// come, go and change, are what a count of the messages gives, also
// after a restart.
func TestCountsKeptAsMessagesChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	k := sealtest.Keys(t)
	st, ms, _ := openFilled(t, path, k)
	check := func(when string) {
		t.Helper()
		for _, mi := range ms.Mailboxes() {
			msgs, err := ms.Messages(mi.Name)
			if err != nil {
				t.Fatal(err)
			}
			unseen := 0
			for _, m := range msgs {
				if !slices.Contains(m.Flags, `\Seen`) {
					unseen++
				}
			}
			if int(mi.Messages) != len(msgs) || int(mi.Unseen) != unseen {
				t.Fatalf("%s: %s counts %d messages, %d unseen; there are %d, %d unseen", when, mi.Name, mi.Messages, mi.Unseen, len(msgs), unseen)
			}
		}
	}
	check("filled")
	ctx := context.Background()
	if _, err := ms.StoreFlags(ctx, "INBOX", []uint32{1, 3}, FlagsSet, []string{`\Deleted`}); err != nil {
		t.Fatal(err)
	}
	check("after a STORE")
	if _, err := ms.Expunge(ctx, "INBOX", nil); err != nil {
		t.Fatal(err)
	}
	check("after an EXPUNGE")
	_, ms = reopen(t, st, ms, path, k, subjectIndexer)
	check("after a restart")
}

// TestConcurrentAppends: appends from several callers at once (indexed
// in shared transactions) get distinct UIDs in order, with events in UID
// order, and all of them are on disk.
func TestConcurrentAppends(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	k := sealtest.Keys(t)
	st, ms := openLocal(t, path, k, subjectIndexer)
	events, stop := ms.Watch("INBOX")
	defer stop()
	const callers, each = 4, 15
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, _, err := ms.Append(ctx, "INBOX", subjectMsg(fmt.Sprintf("c%d-%d", c, i)), nil, time.Time{}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for want := uint32(1); want <= callers*each; want++ {
		if ev := nextEvent(t, events); ev.Kind != EventAdded || ev.Message.UID != want {
			t.Fatalf("event %+v, want UID %d added", ev, want)
		}
	}
	ms.drain(ctx)
	before := snapshot(t, ms)
	_, ms = reopen(t, st, ms, path, k, subjectIndexer)
	unchanged(t, ms, before, "after a restart")
	if mi := info(t, ms, "INBOX"); mi.Messages != callers*each || mi.UIDNext != callers*each+1 {
		t.Fatalf("after a restart: %+v", mi)
	}
}

// crash stops ms as a crash would: the worker stops, and what the index
// keeps for later (the changes it took, \Recent floors) is not written.
func crash(ms *Store) {
	close(ms.closed)
	ms.cancel()
	ms.wg.Wait()
}

// TestCrashKeepsAppends: what an APPEND returned is on disk when it
// returns: after a crash the message is there under the same UID, the
// changes whose taking was left for later are applied again without
// changing a MODSEQ, and a \Recent floor not written yet makes the
// messages \Recent again rather than lost.
func TestCrashKeepsAppends(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	k := sealtest.Keys(t)
	st, ms := openLocal(t, path, k, subjectIndexer)
	var last Message
	for i := range 3 {
		m, _, err := ms.Append(ctx, "INBOX", subjectMsg(fmt.Sprint("m", i)), []string{`\Flagged`}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		last = m
	}
	if _, err := ms.StoreFlags(ctx, "INBOX", []uint32{2}, FlagsAdd, []string{`\Seen`}); err != nil {
		t.Fatal(err)
	}
	if _, err := ms.ClaimRecent(ctx, "INBOX"); err != nil {
		t.Fatal(err)
	}
	want := modseqs(t, ms)
	crash(ms)
	st.Close()

	st, ms = openLocal(t, path, k, subjectIndexer)
	if got := modseqs(t, ms); got != want {
		t.Fatalf("after a crash:\n%s\nwas\n%s", got, want)
	}
	if m := byUID(t, ms, "INBOX", last.UID); m.ID != last.ID || m.ModSeq != last.ModSeq {
		t.Fatalf("after a crash UID %d is %+v, was %+v", last.UID, m, last)
	}
	if changes, _ := ms.docs.Changed(0); len(changes) != 0 {
		t.Fatalf("after a crash and a start, still listed: %v", changes)
	}
	if floor, _ := ms.ClaimRecent(ctx, "INBOX"); floor > last.UID {
		t.Fatalf("floor %d above the last UID %d", floor, last.UID)
	}
	_ = st
}

// TestCopyMoveMany: a COPY and a MOVE of several messages keep each
// message's flags and metadata, give UIDs in order, and a MOVE's source
// logs the UIDs that left.
func TestCopyMoveMany(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	k := sealtest.Keys(t)
	st, ms := openLocal(t, path, k, subjectIndexer)
	for i := range 5 {
		if _, _, err := ms.Append(ctx, "INBOX", subjectMsg(fmt.Sprint("m", i)), []string{fmt.Sprint("$k", i)}, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	src, dst, uv, err := ms.Copy(ctx, "INBOX", []uint32{5, 1, 2, 3, 4}, "Archive")
	if err != nil || !slices.Equal(src, []uint32{1, 2, 3, 4, 5}) || !slices.Equal(dst, []uint32{1, 2, 3, 4, 5}) || uv != info(t, ms, "Archive").UIDValidity {
		t.Fatalf("copy: %v %v %d %v", src, dst, uv, err)
	}
	h := info(t, ms, "INBOX").HighestModSeq
	src, dst, _, err = ms.Move(ctx, "INBOX", []uint32{1, 3, 5}, "Junk")
	if err != nil || !slices.Equal(src, []uint32{1, 3, 5}) || !slices.Equal(dst, []uint32{1, 2, 3}) {
		t.Fatalf("move: %v %v %v", src, dst, err)
	}
	if got := ms.Vanished("INBOX", h); !slices.Equal(got, []uint32{1, 3, 5}) {
		t.Fatalf("vanished after the move: %v", got)
	}
	check := func(mbox string, want []string) {
		t.Helper()
		msgs, err := ms.Messages(mbox)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range msgs {
			meta, _ := ms.Meta(m.ID)
			got = append(got, fmt.Sprintf("%d %v %s", m.UID, m.Flags, meta))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s holds %q, want %q", mbox, got, want)
		}
	}
	check("INBOX", []string{"2 [$k1] meta of Subject: m1", "4 [$k3] meta of Subject: m3"})
	check("Junk", []string{"1 [$k0] meta of Subject: m0", "2 [$k2] meta of Subject: m2", "3 [$k4] meta of Subject: m4"})
	check("Archive", []string{"1 [$k0] meta of Subject: m0", "2 [$k1] meta of Subject: m1", "3 [$k2] meta of Subject: m2", "4 [$k3] meta of Subject: m3", "5 [$k4] meta of Subject: m4"})
	ms.drain(ctx)
	before := snapshot(t, ms)
	_, ms = reopen(t, st, ms, path, k, subjectIndexer)
	unchanged(t, ms, before, "after a restart")
}

// TestVanishedLogIsBounded: a mailbox's log of expunged UIDs drops its
// oldest entries beyond its bound, says from which MODSEQ it is
// complete, and keeps that across a restart; a deleted mailbox's log
// goes with it.
func TestVanishedLogIsBounded(t *testing.T) {
	defer func(m, d int) { vanishedMax, vanishedDrop = m, d }(vanishedMax, vanishedDrop)
	vanishedMax, vanishedDrop = 6, 3
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	k := sealtest.Keys(t)
	st, ms := openLocal(t, path, k, nil)
	if err := ms.CreateMailbox(ctx, "Gone"); err != nil {
		t.Fatal(err)
	}
	var expunged []Message // in expunge order
	for i := range 8 {
		for _, mbox := range []string{"INBOX", "Gone"} {
			if _, _, err := ms.Append(ctx, mbox, subjectMsg(fmt.Sprint(mbox, i)), []string{`\Deleted`}, time.Time{}); err != nil {
				t.Fatal(err)
			}
		}
		uid := uint32(i + 1)
		if _, err := ms.Expunge(ctx, "Gone", []uint32{uid}); err != nil {
			t.Fatal(err)
		}
		if _, err := ms.Expunge(ctx, "INBOX", []uint32{uid}); err != nil {
			t.Fatal(err)
		}
		expunged = append(expunged, Message{UID: uid, ModSeq: info(t, ms, "INBOX").HighestModSeq})
	}
	// 8 expunges with room for 6: the 7th dropped the oldest 4 (leaving
	// 6-3 with itself), the 8th fits.
	check := func(when string) {
		t.Helper()
		mi := info(t, ms, "INBOX")
		if mi.VanishedFloor != expunged[3].ModSeq {
			t.Fatalf("%s: floor %d, want %d (the 4th expunge)", when, mi.VanishedFloor, expunged[3].ModSeq)
		}
		if got := ms.Vanished("INBOX", 0); !slices.Equal(got, []uint32{5, 6, 7, 8}) {
			t.Fatalf("%s: vanished %v, want [5 6 7 8]", when, got)
		}
	}
	check("before a restart")
	if err := ms.DeleteMailbox(ctx, "Gone"); err != nil {
		t.Fatal(err)
	}
	st, ms = reopen(t, st, ms, path, k, nil)
	check("after a restart")
	n := 0
	err := st.View(func(tx *localstore.Tx) error {
		return tx.ForEachSeq(bucketVanished, func(uint64, []byte) error { n++; return nil })
	})
	if err != nil || n != 4 {
		t.Fatalf("%d entries on disk (%v), want INBOX's 4", n, err)
	}
}
