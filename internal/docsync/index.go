package docsync

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/bitmask-go/bitmask/internal/localstore"
)

// The local indexes: the documents waiting to be pushed (docs-dirty)
// and the live documents of each indexed type (docs-type:<type>). Both are
// written in the transaction of every record (putRecord) and built by one
// pass over the documents when a store lacks them.

func (e *Engine) indexType(tx *localstore.Tx, id string, r *record, fresh bool) error {
	e.mu.Lock()
	types := e.types
	e.mu.Unlock()
	t := ""
	if !r.Deleted {
		t = docType(r.Body)
	}
	for _, it := range types {
		var err error
		switch {
		case it == t:
			err = tx.Put(typeBucket(it), id, nil)
		case !fresh: // a new document is in no type's index
			err = tx.Delete(typeBucket(it), id)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// docType is the "type" member of a document body, if it has one.
func docType(body []byte) string {
	var head struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(body, &head) != nil {
		return ""
	}
	return head.Type
}

func typeBucket(t string) string { return "docs-type:" + t }

// errStop ends a walk early.
var errStop = errors.New("stop")

// IndexTypes keeps a local index of the live documents whose body has
// one of these "type" members, so ForEachType finds them without reading
// every document (an account has a few keys among 100,000 messages). A
// type's index is built once (one pass over the documents) and kept from
// then on by every write of an engine that indexes the type, so call it
// before the engine writes: before the first sync.
func (e *Engine) IndexTypes(types ...string) error {
	e.mu.Lock()
	var add []string
	for _, t := range types {
		if !slices.Contains(e.types, t) && !slices.Contains(add, t) {
			add = append(add, t)
		}
	}
	e.mu.Unlock()
	if len(add) == 0 {
		return nil
	}
	err := e.st.Update(func(tx *localstore.Tx) error {
		var build []string
		for _, t := range add {
			if _, err := tx.Get(bucketState, keyTypes+t); errors.Is(err, localstore.ErrNotFound) {
				build = append(build, t)
			} else if err != nil {
				return err
			}
		}
		if len(build) == 0 {
			e.addTypes(add)
			return nil
		}
		e.log.Info("building the local index of document types", "types", build)
		var ids, kinds []string
		err := tx.ForEach(bucketDocs, func(id string, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("docsync: local record %s: %w", id, err)
			}
			if t := docType(r.Body); !r.Deleted && slices.Contains(build, t) {
				ids, kinds = append(ids, id), append(kinds, t)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i, id := range ids {
			if err := tx.Put(typeBucket(kinds[i]), id, nil); err != nil {
				return err
			}
		}
		for _, t := range build {
			if err := tx.Put(bucketState, keyTypes+t, []byte{1}); err != nil {
				return err
			}
		}
		// Known before this transaction commits: a write waiting for it
		// keeps the new indexes from its first record.
		e.addTypes(add)
		return nil
	})
	if err != nil {
		e.mu.Lock()
		e.types = slices.DeleteFunc(e.types, func(t string) bool { return slices.Contains(add, t) })
		e.mu.Unlock()
		return fmt.Errorf("docsync: indexing documents of types %q: %w", add, err)
	}
	return nil
}

func (e *Engine) addTypes(add []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range add {
		if !slices.Contains(e.types, t) {
			e.types = append(e.types, t)
		}
	}
}

// ForgetIndexes drops the local indexes (pending pushes, types) of the
// store st, so the next engine on it builds them again from the
// documents: for a store that something other than this program may have
// written (see localstore.TakeCleanMark).
func ForgetIndexes(st *localstore.Store) error {
	err := st.Update(func(tx *localstore.Tx) error {
		var types []string
		err := tx.ForEach(bucketState, func(k string, _ []byte) error {
			if t, ok := strings.CutPrefix(k, keyTypes); ok {
				types = append(types, t)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, t := range types {
			if err := tx.Delete(bucketState, keyTypes+t); err != nil {
				return err
			}
			if err := tx.DeleteBucket(typeBucket(t)); err != nil {
				return err
			}
		}
		if err := tx.Delete(bucketState, keyDirtyIndex); err != nil {
			return err
		}
		return tx.DeleteBucket(bucketDirty)
	})
	if err != nil {
		return fmt.Errorf("docsync: forgetting the local indexes: %w", err)
	}
	return nil
}

// ForEachType calls fn with every live document of an indexed type; an
// error of fn ends the walk and comes back as it is.
func (e *Engine) ForEachType(t string, fn func(*Doc) error) error {
	e.mu.Lock()
	indexed := slices.Contains(e.types, t)
	e.mu.Unlock()
	if !indexed {
		return fmt.Errorf("docsync: documents of type %q are not indexed", t)
	}
	var docs []*Doc
	err := e.st.View(func(tx *localstore.Tx) error {
		var ids []string
		err := tx.ForEach(typeBucket(t), func(id string, _ []byte) error {
			ids = append(ids, id)
			return nil
		})
		if err != nil {
			return err
		}
		for _, id := range ids {
			r, err := getRecord(tx, id)
			if err != nil {
				return err
			}
			if r != nil && !r.Deleted && docType(r.Body) == t {
				docs = append(docs, &Doc{ID: id, Rev: r.Rev, Body: r.Body})
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("docsync: reading documents of type %q: %w", t, err)
	}
	for _, d := range docs {
		if err := fn(d); err != nil {
			return err
		}
	}
	return nil
}

// ensureDirtyIndex builds the index of documents waiting to be pushed
// for a store written before it existed (one pass, once).
func (e *Engine) ensureDirtyIndex() error {
	if e.dirtyReady.Load() {
		return nil
	}
	err := e.st.Update(func(tx *localstore.Tx) error {
		if _, err := tx.Get(bucketState, keyDirtyIndex); err == nil {
			return nil
		} else if !errors.Is(err, localstore.ErrNotFound) {
			return err
		}
		var ids []string
		err := tx.ForEach(bucketDocs, func(id string, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("docsync: local record %s: %w", id, err)
			}
			if r.needsPush() {
				ids = append(ids, id)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := tx.Put(bucketDirty, id, nil); err != nil {
				return err
			}
		}
		return tx.Put(bucketState, keyDirtyIndex, []byte{1})
	})
	if err != nil {
		return fmt.Errorf("docsync: indexing the documents waiting to be pushed: %w", err)
	}
	e.dirtyReady.Store(true)
	return nil
}
