package docsync

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/bitmask-go/bitmask/internal/localstore"
)

// The journal of changed documents (docs-changed): what the consumer of
// changes, the mail store, has yet to take into its own index.

// journal records, in the transaction that changes a document's
// content, that its consumer has yet to take the change (see Changed). The
// entry holds a stamp from a counter that grows with every change, so a
// consumer that took an older state of the document does not clear a
// newer change.
func journal(tx *localstore.Tx, id string) error {
	var n uint64
	if v, err := tx.Get(bucketState, keyStamp); err == nil && len(v) == 8 {
		n = binary.BigEndian.Uint64(v)
	} else if err != nil && !errors.Is(err, localstore.ErrNotFound) {
		return err
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n+1)
	if err := tx.Put(bucketState, keyStamp, b[:]); err != nil {
		return err
	}
	return tx.Put(bucketChanged, id, b[:])
}

// Change is a document whose content changed (a local write, a pulled
// revision, a merge) and that its consumer has not taken since.
type Change struct {
	ID    string
	Stamp uint64
}

func stampOf(v []byte) uint64 {
	if len(v) != 8 {
		return 0 // written before stamps: any taking clears it
	}
	return binary.BigEndian.Uint64(v)
}

// Changed lists up to limit (0: all) changes not taken yet. The mail
// store, the one consumer of changes, reads a change, applies the
// document as it is then, and takes the change in the transaction that
// updates its index; so a crash between a document's commit and its
// indexing leaves it listed, a start applies what is listed instead of
// reading every document, and a change that lands while an older one is
// being applied stays listed.
func (e *Engine) Changed(limit int) ([]Change, error) {
	var out []Change
	err := e.st.View(func(tx *localstore.Tx) error {
		err := tx.ForEach(bucketChanged, func(id string, v []byte) error {
			if limit > 0 && len(out) >= limit {
				return errStop
			}
			out = append(out, Change{ID: id, Stamp: stampOf(v)})
			return nil
		})
		if err == errStop {
			return nil
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("docsync: listing changed documents: %w", err)
	}
	return out, nil
}

// Taken marks changes as taken by the consumer, in its transaction: each
// entry goes unless a newer change of the document replaced it.
func Taken(tx *localstore.Tx, changes ...Change) error {
	for _, c := range changes {
		v, err := tx.Get(bucketChanged, c.ID)
		if errors.Is(err, localstore.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("docsync: taking the change of %s: %w", c.ID, err)
		}
		if stampOf(v) <= c.Stamp {
			if err := tx.Delete(bucketChanged, c.ID); err != nil {
				return fmt.Errorf("docsync: taking the change of %s: %w", c.ID, err)
			}
		}
	}
	return nil
}
