package mailstore

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/pkg/seal/sealtest"
)

// toLegacyIndex rewrites the index as bitmaskd kept it before slots: each
// message's entry and metadata keyed by its document id, no slot
// counter.
func toLegacyIndex(t *testing.T, st *localstore.Store) {
	t.Helper()
	err := st.Update(func(tx *localstore.Tx) error {
		type entry struct {
			id       string
			st, meta []byte
		}
		var all []entry
		err := tx.ForEachSeq(bucketMsg, func(slot uint64, v []byte) error {
			var ms msgState
			if err := json.Unmarshal(v, &ms); err != nil {
				return err
			}
			meta, err := tx.GetSeq(bucketMeta, slot)
			if err != nil && !errors.Is(err, localstore.ErrNotFound) {
				return err
			}
			all = append(all, entry{ms.ID, v, meta})
			return nil
		})
		if err != nil {
			return err
		}
		for _, e := range all {
			if err := tx.Put(legacyMsg, e.id, e.st); err != nil {
				return err
			}
			if e.meta != nil {
				if err := tx.Put(legacyMeta, e.id, e.meta); err != nil {
					return err
				}
			}
		}
		for _, b := range []string{bucketMsg, bucketMeta} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return tx.Delete(bucketState, "slot")
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMigrateLocal: an index kept by document id is moved to slots at
// Open (on a local engine, with messages in several mailboxes, one
// without metadata): every UID, flag and metadata is kept, the old
// buckets are gone, UID order is slot order in each mailbox, the next
// message gets the next slot, and a second Open has nothing to move.
// TestLegacyIndexMigrates does the same through the daemon.
func TestMigrateLocal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	k := sealtest.Keys(t)
	ctx := context.Background()
	st, ms, before := openFilled(t, path, k)
	ms.Close()
	toLegacyIndex(t, st)

	st, ms = reopen(t, st, ms, path, k, subjectIndexer)
	unchanged(t, ms, before, "after migration")
	err := st.View(func(tx *localstore.Tx) error {
		if n := tx.Count(legacyMsg) + tx.Count(legacyMeta); n != 0 {
			t.Errorf("%d entries left in the old buckets", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	last := highestSlot(t, ms, st)
	if _, _, err := ms.Append(ctx, "INBOX", subjectMsg("new"), nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got := slotOrder(t, st); got != last+1 {
		t.Fatalf("the new message's slot is %d, want %d", got, last+1)
	}
	before = snapshot(t, ms)
	st, ms = reopen(t, st, ms, path, k, subjectIndexer)
	unchanged(t, ms, before, "after the second open")
	if got := slotOrder(t, st); got != last+1 {
		t.Fatalf("highest slot after the second open %d, want %d", got, last+1)
	}
}
