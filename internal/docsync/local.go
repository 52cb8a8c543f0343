package docsync

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/bitmask-go/bitmask/internal/localstore"
)

// Local reads and writes. Writes are local first: they commit to the
// local store, mark the document dirty and kick the engine to push.

// Put writes a document locally; it is pushed by the next sync.
func (e *Engine) Put(id string, body []byte) error {
	return e.write(id, body, false)
}

// Delete deletes a document locally (a tombstone, pushed by the next
// sync).
func (e *Engine) Delete(id string) error {
	return e.write(id, nil, true)
}

// PutBatch writes many documents in one local transaction.
func (e *Engine) PutBatch(docs []Doc) error {
	for _, d := range docs {
		if err := checkID(d.ID); err != nil {
			return err
		}
	}
	err := e.st.Update(func(tx *localstore.Tx) error {
		for _, d := range docs {
			if err := e.writeTx(tx, d.ID, d.Body, false); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("docsync: writing %d documents: %w", len(docs), err)
	}
	e.kickSoon()
	return nil
}

func checkID(id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("docsync: invalid document id %q", id)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("docsync: invalid document id %q", id)
		}
	}
	return nil
}

func (e *Engine) write(id string, body []byte, del bool) error {
	if err := checkID(id); err != nil {
		return err
	}
	err := e.st.Update(func(tx *localstore.Tx) error { return e.writeTx(tx, id, body, del) })
	if err != nil {
		return fmt.Errorf("docsync: writing document %s: %w", id, err)
	}
	e.kickSoon()
	return nil
}

func (e *Engine) writeTx(tx *localstore.Tx, id string, body []byte, del bool) error {
	r, err := getRecord(tx, id)
	if err != nil {
		return err
	}
	if r == nil {
		if del {
			return nil
		}
		r = &record{}
	}
	if !r.Dirty {
		r.Base, r.BaseDel = r.Body, r.Deleted
		if r.Rev == 0 {
			r.Base, r.BaseDel = nil, false
		}
	}
	r.Body, r.Deleted, r.Dirty = body, del, true
	r.Ver++
	if err := journal(tx, id); err != nil {
		return err
	}
	return e.putRecord(tx, id, r)
}

// writeNewTx is writeTx for a document whose id was just made at random
// (Doc.New): there is no record to read, no type index entry to remove,
// and, for a consumer that applies it in the same transaction
// (WriteApplied), no change to list. Each of those was a walk down one
// more of the local store's trees for every APPEND.
func (e *Engine) writeNewTx(tx *localstore.Tx, id string, body []byte, listChange bool) error {
	if listChange {
		if err := journal(tx, id); err != nil {
			return err
		}
	}
	return e.putNewRecord(tx, id, &record{Body: body, Dirty: true, Ver: 1})
}

// Modify reads, changes and writes back documents in one local
// transaction: fn gets each live document's body and returns the new body,
// or del to delete it, or keep to leave it as it is. Missing or deleted
// documents are skipped. An error of fn ends the transaction, which
// writes nothing, and comes back as it is.
func (e *Engine) Modify(ids []string, fn func(id string, body []byte) (newBody []byte, del, keep bool, err error)) error {
	changed := false
	var fnErr error
	err := e.st.Update(func(tx *localstore.Tx) error {
		for _, id := range ids {
			r, err := getRecord(tx, id)
			if err != nil {
				return err
			}
			if r == nil || r.Deleted {
				continue
			}
			nb, del, keep, err := fn(id, r.Body)
			if err != nil {
				fnErr = err
				return err
			}
			if keep {
				continue
			}
			if err := e.writeTx(tx, id, nb, del); err != nil {
				return err
			}
			changed = true
		}
		return nil
	})
	if err == nil && changed {
		e.kickSoon()
	}
	if err != nil && err != fnErr {
		return fmt.Errorf("docsync: modifying %d documents: %w", len(ids), err)
	}
	return err
}

// Get returns a live document.
func (e *Engine) Get(id string) (*Doc, error) {
	var d *Doc
	err := e.st.View(func(tx *localstore.Tx) error {
		r, err := getRecord(tx, id)
		if err != nil {
			return err
		}
		if r == nil || r.Deleted {
			return ErrNotFound
		}
		d = &Doc{ID: id, Rev: r.Rev, Body: r.Body}
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("docsync: reading document %s: %w", id, err)
	}
	return d, err
}

// ForEach calls fn with every live document; an error of fn ends the
// walk and comes back as it is.
func (e *Engine) ForEach(fn func(*Doc) error) error {
	var fnErr error
	err := e.st.View(func(tx *localstore.Tx) error {
		return tx.ForEach(bucketDocs, func(id string, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("docsync: local record %s: %w", id, err)
			}
			if r.Deleted {
				return nil
			}
			fnErr = fn(&Doc{ID: id, Rev: r.Rev, Body: r.Body})
			return fnErr
		})
	})
	if err != nil && err != fnErr {
		return fmt.Errorf("docsync: reading documents: %w", err)
	}
	return err
}
