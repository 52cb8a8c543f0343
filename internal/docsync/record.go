package docsync

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/providerapi"
)

// A document's local record: its state at the provider and here, the
// attempts at pushing it, and the one write path (putRecord) that keeps
// the local indexes in step with every record.

// record is what the local store keeps per document.
type record struct {
	Rev     uint64 `json:"r"`           // last revision known at the provider
	Deleted bool   `json:"d,omitempty"` // tombstone (locally or remotely)
	Body    []byte `json:"b,omitempty"` // current body
	Base    []byte `json:"a,omitempty"` // body at Rev while Dirty (for a three-way merge)
	BaseDel bool   `json:"ad,omitempty"`
	Dirty   bool   `json:"x,omitempty"` // local change not yet at the provider
	Ver     uint64 `json:"v,omitempty"` // local edit counter
	// Pushing is the revision sent and not yet answered: if the answer
	// is lost (a crash, a cut connection), the provider's copy is
	// recognised as ours when it comes back, not merged as someone
	// else's (where a deletion of ours would win over our later edit).
	Pushing *inflight `json:"p,omitempty"`
}

// inflight lists the attempts at pushing revision Rev (each attempt seals
// anew, so any of them may be the one the provider kept).
type inflight struct {
	Rev      uint64    `json:"r"`
	Attempts []attempt `json:"a"`
}

type attempt struct {
	Hash []byte `json:"h"` // SHA-256 of the ciphertext sent
	Ver  uint64 `json:"v"` // the local edit it carried
}

// matches reports whether d is one of our attempts, and its local edit.
func (f *inflight) matches(d *providerapi.Doc) (uint64, bool) {
	if f == nil || d.Rev != f.Rev {
		return 0, false
	}
	h := sha256.Sum256(d.Ciphertext)
	for _, a := range f.Attempts {
		if bytes.Equal(h[:], a.Hash) {
			return a.Ver, true
		}
	}
	return 0, false
}

// acknowledge records that the provider holds revision rev of ours (sent
// at local edit ver, with body as its content).
func (r *record) acknowledge(rev, ver uint64, deleted bool, body []byte) {
	r.Pushing = nil
	if r.Ver == ver {
		r.Rev, r.Dirty, r.Base, r.BaseDel = rev, false, nil, false
		if r.Deleted {
			r.Body = nil
		}
		return
	}
	// Edited since: still dirty, now based on what the provider has.
	r.Rev, r.Base, r.BaseDel = rev, body, deleted
}

// needsPush: a local change the provider has not taken yet (a document
// made and deleted before it ever reached the provider has nothing to
// tell).
func (r *record) needsPush() bool { return r.Dirty && !(r.Deleted && r.Rev == 0) }

func getRecord(tx *localstore.Tx, id string) (*record, error) {
	v, err := tx.Get(bucketDocs, id)
	if errors.Is(err, localstore.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("docsync: local record %s: %w", id, err)
	}
	return &r, nil
}

// putRecord writes a record and keeps the local indexes in step with it:
// the documents waiting to be pushed, and the documents of each indexed
// type (see IndexTypes).
func (e *Engine) putRecord(tx *localstore.Tx, id string, r *record) error {
	return e.writeRecord(tx, id, r, false)
}

// putNewRecord is putRecord for a document no record has had (Doc.New):
// there is no index entry to remove.
func (e *Engine) putNewRecord(tx *localstore.Tx, id string, r *record) error {
	return e.writeRecord(tx, id, r, true)
}

func (e *Engine) writeRecord(tx *localstore.Tx, id string, r *record, fresh bool) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := tx.Put(bucketDocs, id, v); err != nil {
		return err
	}
	switch {
	case r.needsPush():
		err = tx.Put(bucketDirty, id, nil)
	case !fresh:
		err = tx.Delete(bucketDirty, id)
	}
	if err != nil {
		return err
	}
	return e.indexType(tx, id, r, fresh)
}
