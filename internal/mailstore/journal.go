package mailstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/localstore"
)

// keyJournal, in bucketState, marks an index that follows docsync's list
// of changes (docsync.Changed): catchUp applies the listed documents and
// nothing else. An index without it (written before that list existed,
// or by something other than this program) is reconciled with every
// document, once, and then marked.
const keyJournal = "journal"

// Reconcile makes the next Open on st compare every document with the
// index, as for a store from before the change list: for a store that
// something other than this program may have written (see
// localstore.TakeCleanMark).
func Reconcile(st *localstore.Store) error {
	err := st.Update(func(tx *localstore.Tx) error { return tx.Delete(bucketState, keyJournal) })
	if err != nil {
		return fmt.Errorf("mailstore: marking the index for a full reconcile: %w", err)
	}
	return nil
}

// catchUp applies the changes docsync lists as not taken yet (see
// docsync.Changed): what was pulled or written before a crash or a stop
// cut its indexing short. A store indexed before that list existed is
// reconciled in full, once.
func (s *Store) catchUp() error {
	journaled, err := s.journaled()
	if err != nil {
		return err
	}
	if !journaled {
		if err := s.reconcileOnce(); err != nil {
			return err
		}
	}
	s.drain(s.ctx)
	return nil
}

// journaled says whether the index follows docsync's list of changes
// (see keyJournal).
func (s *Store) journaled() (bool, error) {
	var journaled bool
	err := s.st.View(func(tx *localstore.Tx) error {
		_, err := tx.Get(bucketState, keyJournal)
		journaled = err == nil
		if errors.Is(err, localstore.ErrNotFound) {
			return nil
		}
		return err
	})
	return journaled, err
}

// reconcileOnce reconciles the index with every document and, when all
// of them could be applied, takes the changes listed before it and marks
// the index as following the list from now on.
func (s *Store) reconcileOnce() error {
	changes, err := s.docs.Changed(0)
	if err != nil {
		return err
	}
	failed, err := s.reconcileAll()
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		// Some documents could not be applied (say their blobs
		// cannot be fetched offline): reconcile in full again at
		// the next start, until all are in.
		s.log.Warn("mailstore: documents not indexed yet; will try again at the next start", "count", len(failed))
		return nil
	}
	return s.st.Update(func(tx *localstore.Tx) error {
		if err := docsync.Taken(tx, changes...); err != nil {
			return err
		}
		return tx.Put(bucketState, keyJournal, []byte{1})
	})
}

// reconcileAll compares every document with the index and applies what
// differs (documents that arrived or changed while we were not running,
// or whose indexing was cut short).
func (s *Store) reconcileAll() (failed map[string]bool, err error) {
	var ids []string
	seen := map[string]bool{}
	s.mu.Lock()
	err = s.docs.ForEach(func(d *docsync.Doc) error {
		var md struct {
			messageDoc
			Name string `json:"name"`
		}
		if json.Unmarshal(d.Body, &md) != nil {
			return nil
		}
		switch md.Type {
		case typeMessage:
			seen[d.ID] = true
			if m := s.byID[d.ID]; m != nil && m.mbox == md.Mbox && slices.Equal(m.flags, normFlags(md.Flags)) {
				return nil // indexed as it is
			}
		case typeMailbox:
			seen[d.ID] = true
			if _, ok := s.mboxes[md.Name]; ok {
				return nil
			}
		default:
			return nil
		}
		ids = append(ids, d.ID)
		return nil
	})
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	for id := range s.byID {
		if !seen[id] {
			ids = append(ids, id) // indexed but gone: expunge
		}
	}
	for name := range s.mboxes {
		if id := s.mailboxDocID(name); !seen[id] {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	return s.apply(s.ctx, ids), nil
}
