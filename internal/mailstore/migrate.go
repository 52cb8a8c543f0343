package mailstore

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/bitmask-go/bitmask/internal/localstore"
)

// The index before slots, keyed by document id; moved over at Open.
const (
	legacyMsg  = "mail-msg"
	legacyMeta = "mail-meta"
)

// migrate moves an index kept by document id (as written before slots)
// to slots, in UID order within each mailbox, keeping every UID.
func (s *Store) migrate() error {
	return s.st.Update(func(tx *localstore.Tx) error {
		if tx.Count(legacyMsg) == 0 {
			return nil
		}
		type entry struct {
			st   msgState
			meta []byte
		}
		var all []entry
		err := tx.ForEach(legacyMsg, func(id string, v []byte) error {
			var ms msgState
			if err := json.Unmarshal(v, &ms); err != nil {
				return fmt.Errorf("mailstore: index of message: %w", err)
			}
			ms.ID = id
			meta, err := tx.Get(legacyMeta, id)
			if err != nil && !errors.Is(err, localstore.ErrNotFound) {
				return err
			}
			all = append(all, entry{ms, meta})
			return nil
		})
		if err != nil {
			return err
		}
		sort.Slice(all, func(i, j int) bool {
			if all[i].st.Mbox != all[j].st.Mbox {
				return all[i].st.Mbox < all[j].st.Mbox
			}
			return all[i].st.UID < all[j].st.UID
		})
		var slot uint64
		if v, err := tx.Get(bucketState, "slot"); err == nil && len(v) == 8 {
			slot = binary.BigEndian.Uint64(v)
		}
		for _, e := range all {
			slot++
			b, _ := json.Marshal(e.st)
			if err := tx.PutSeq(bucketMsg, slot, b); err != nil {
				return err
			}
			if e.meta != nil {
				if err := tx.PutSeq(bucketMeta, slot, e.meta); err != nil {
					return err
				}
			}
		}
		if err := putSlot(tx, slot); err != nil {
			return err
		}
		if err := tx.DeleteBucket(legacyMsg); err != nil {
			return err
		}
		return tx.DeleteBucket(legacyMeta)
	})
}
