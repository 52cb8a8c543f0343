package mailstore

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/pkg/seal/sealtest"
)

// An expunged message stays readable through Raw for a while (RFC 2180
// §4.1.1: a session not yet told of the expunge may still fetch it),
// while Meta, Messages and the counts say at once that it is gone; the
// oldest beyond expungedMax, and all after expungedGrace, are forgotten,
// and so are all at a restart.
func TestExpungedStaysReadable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	k := sealtest.Keys(t)
	st, ms := openLocal(t, path, k, subjectIndexer)
	raws := [][]byte{[]byte("one\r\n\r\nbody one\r\n"), []byte("two\r\n\r\nbody two\r\n"), []byte("three\r\n\r\nbody three\r\n")}
	var ids []string
	var uids []uint32
	for _, raw := range raws {
		m, _, err := ms.Append(ctx, "INBOX", raw, []string{`\Deleted`}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		ids, uids = append(ids, m.ID), append(uids, m.UID)
	}
	if _, err := ms.Expunge(ctx, "INBOX", uids[:2]); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids[:2] {
		raw, err := ms.Raw(ctx, id)
		if err != nil || !bytes.Equal(raw, raws[i]) {
			t.Errorf("Raw of expunged message %d: %q, %v", i, raw, err)
		}
		if _, err := ms.Meta(id); !errors.Is(err, ErrNoMessage) {
			t.Errorf("Meta of expunged message %d: %v, want ErrNoMessage", i, err)
		}
	}
	if msgs, _ := ms.Messages("INBOX"); len(msgs) != 1 || msgs[0].ID != ids[2] {
		t.Errorf("INBOX after the expunge: %v", msgs)
	}

	// Beyond expungedMax, the oldest goes.
	defer func(n int) { expungedMax = n }(expungedMax)
	expungedMax = 2
	if _, err := ms.Expunge(ctx, "INBOX", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ms.Raw(ctx, ids[0]); !errors.Is(err, ErrNoMessage) {
		t.Errorf("Raw of the oldest beyond expungedMax: %v, want ErrNoMessage", err)
	}
	for _, id := range ids[1:] {
		if _, err := ms.Raw(ctx, id); err != nil {
			t.Errorf("Raw of an expunged message within expungedMax: %v", err)
		}
	}

	// After expungedGrace (the worker's tick), all go.
	defer func(d time.Duration) { expungedGrace = d }(expungedGrace)
	expungedGrace = 0
	ms.purgeExpunged()
	for _, id := range ids {
		if _, err := ms.Raw(ctx, id); !errors.Is(err, ErrNoMessage) {
			t.Errorf("Raw after expungedGrace: %v, want ErrNoMessage", err)
		}
	}

	// A restart forgets them too.
	expungedGrace = time.Hour
	m, _, err := ms.Append(ctx, "INBOX", raws[0], []string{`\Deleted`}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ms.Expunge(ctx, "INBOX", nil); err != nil {
		t.Fatal(err)
	}
	_, ms = reopen(t, st, ms, path, k, subjectIndexer)
	if _, err := ms.Raw(ctx, m.ID); !errors.Is(err, ErrNoMessage) {
		t.Errorf("Raw of an expunged message after a restart: %v, want ErrNoMessage", err)
	}
}
