package mailstore

import (
	"context"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/pkg/seal/sealtest"
)

// TestAppendBulk: one bulk write stores messages in two mailboxes as
// APPEND would (UIDs in order, flags, dates, content, listed for upload);
// a second write with the same derived ids stores nothing again and
// says so; a message for a missing mailbox fails alone; everything is
// there after a reopen.
func TestAppendBulk(t *testing.T) {
	ctx := context.Background()
	k := sealtest.Keys(t)
	path := filepath.Join(t.TempDir(), "s.db")
	st, ms := openLocal(t, path, k, subjectIndexer)
	if err := ms.CreateMailbox(ctx, "Old/2019"); err != nil {
		t.Fatal(err)
	}
	date := time.Date(2019, 3, 4, 5, 6, 7, 0, time.UTC)
	var msgs []BulkMessage
	for i := range 10 {
		raw := []byte(fmt.Sprintf("Subject: m%d\r\n\r\nbody %d\r\n", i, i))
		sum := sha256.Sum256(raw)
		mbox := "INBOX"
		if i%2 == 1 {
			mbox = "Old/2019"
		}
		msgs = append(msgs, BulkMessage{ID: ms.ImportDocID(mbox, sum[:], 0), Mbox: mbox, Raw: raw, Flags: []string{`\Seen`, `\Flagged`}, Date: date})
	}
	msgs = append(msgs, BulkMessage{Mbox: "Nowhere", Raw: []byte("Subject: x\r\n\r\n")})
	res, err := ms.AppendBulk(ctx, append([]BulkMessage(nil), msgs...))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res[:10] {
		if r.Err != nil || r.Existed {
			t.Fatalf("message %d: %+v", i, r)
		}
		if want := uint32(i/2 + 1); r.Message.UID != want {
			t.Errorf("message %d: UID %d, want %d", i, r.Message.UID, want)
		}
	}
	if res[10].Err != ErrNoMailbox {
		t.Errorf("message for a missing mailbox: %v", res[10].Err)
	}
	check := func(ms *Store) {
		t.Helper()
		for _, mbox := range []string{"INBOX", "Old/2019"} {
			got, err := ms.Messages(mbox)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 5 {
				t.Fatalf("%s: %d messages, want 5", mbox, len(got))
			}
			for _, m := range got {
				if !m.Date.Equal(date) || len(m.Flags) != 2 {
					t.Errorf("%s UID %d: date %v flags %v", mbox, m.UID, m.Date, m.Flags)
				}
				raw, err := ms.Raw(ctx, m.ID)
				if err != nil || len(raw) == 0 {
					t.Errorf("%s UID %d: content %q, %v", mbox, m.UID, raw, err)
				}
			}
		}
	}
	check(ms)
	if n := ms.docs.Status().Pending; n < 10 {
		t.Errorf("%d documents waiting to be pushed, want the 10 messages among them", n)
	}
	// Again: nothing new.
	res, err = ms.AppendBulk(ctx, msgs[:10])
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if !r.Existed || r.Message.UID == 0 {
			t.Errorf("second write, message %d: %+v", i, r)
		}
	}
	st, ms = reopen(t, st, ms, path, k, subjectIndexer)
	_ = st
	check(ms)
	for i := range msgs[:10] {
		if !ms.Known(msgs[i].ID) {
			t.Errorf("message %d not known after a reopen", i)
		}
	}
}

// BenchmarkAppendBulk: 10 KB messages in batches of 256, each batch
// durable when AppendBulk returns.
func BenchmarkAppendBulk(b *testing.B) {
	ctx := context.Background()
	ms := openBench(b)
	b.SetBytes(10 << 10)
	const batch = 256
	n := 0
	var msgs []BulkMessage
	flush := func() {
		if _, err := ms.AppendBulk(ctx, msgs); err != nil {
			b.Fatal(err)
		}
		msgs = msgs[:0]
	}
	for b.Loop() {
		n++
		msgs = append(msgs, BulkMessage{Mbox: "INBOX", Raw: benchMsg(n), Flags: []string{`\Seen`}})
		if len(msgs) == batch {
			flush()
		}
	}
	if len(msgs) > 0 {
		flush()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
