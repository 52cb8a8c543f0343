// Package docsync keeps an account's documents in sync between the local
// encrypted store and the provider (DESIGN.md "The encrypted document
// store"; docs/sync.md). It is local-first: writes land in the local store
// at once and are pushed when the provider is reachable. A pull applies
// the provider's changes feed since the last sequence; a push sends dirty
// documents with the revision they were based on; a conflict is merged
// (Merge3, deletion wins) and pushed again. Every document from the
// provider is authenticated against the account, its id and its revision,
// and a revision older than one already seen is refused as a replay.
package docsync

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/providerclient"
	"github.com/bitmask-go/bitmask/internal/recovered"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// Buckets of the local store used here.
const (
	bucketDocs  = "docs"
	bucketDirty = "docs-dirty" // id -> nothing: documents waiting to be pushed
	// id -> nothing: content changed (here or by a pull) and not yet
	// Taken by the consumer of changes (the mail store).
	bucketChanged = "docs-changed"
	bucketState   = "sync-state"
	keySeq        = "seq"
	keyTypes      = "type-index:"  // + type: docs-type:<type> is kept
	keyDirtyIndex = "dirty-index"  // docs-dirty is kept
	keyStamp      = "change-stamp" // the last stamp of docs-changed
	pageSize      = 1000
	pushBatch     = 500
)

// ErrNotFound is returned for a missing or deleted document.
var ErrNotFound = errors.New("docsync: no such document")

// Doc is a document as the rest of bitmaskd sees it.
type Doc struct {
	ID   string
	Rev  uint64 // the provider's revision this body is based on
	Body []byte
}

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

// Remote is what the engine needs of the provider; *client.Client is it.
type Remote interface {
	Changes(ctx context.Context, since uint64, limit int, wait time.Duration) (*providerapi.ChangesResponse, error)
	Push(ctx context.Context, docs []providerapi.DocPush) (*providerapi.PushResponse, error)
	Events(ctx context.Context, fn func(providerapi.Event)) error
}

var _ Remote = (*providerclient.Client)(nil)

// Status is what `bitmaskctl status` shows of sync.
type Status struct {
	LastSeq   uint64    `json:"last_seq"`
	Head      uint64    `json:"head"` // the provider's sequence, as last seen
	Pending   int       `json:"pending"`
	LastSync  time.Time `json:"last_sync,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	Rejected  int       `json:"rejected"`
	Pulled    int       `json:"pulled"` // documents applied by the sync in progress
	Syncing   bool      `json:"syncing"`
	Online    bool      `json:"online"`
}

// Engine syncs one account.
type Engine struct {
	st     *localstore.Store
	remote Remote
	key    *[32]byte
	keys   *seal.Keys
	user   string
	log    *slog.Logger

	syncMu sync.Mutex // one sync at a time
	kick   chan struct{}

	mu       sync.Mutex // guards status and the hooks
	status   Status
	onChange []func(ids []string)
	onEvent  []func(providerapi.Event)
	types    []string // indexed document types

	dirtyReady atomic.Bool // docs-dirty checked to exist
}

// OnEvent registers fn to be called with every event of the provider's
// notification stream (the mail layer watches the incoming counter).
func (e *Engine) OnEvent(fn func(providerapi.Event)) {
	e.mu.Lock()
	e.onEvent = append(e.onEvent, fn)
	e.mu.Unlock()
}

// New makes an engine for user (the AEAD's user binding: the account
// address) with the document key.
func New(st *localstore.Store, remote Remote, keys *seal.Keys, user string, log *slog.Logger) *Engine {
	if log == nil {
		log = slog.Default()
	}
	return &Engine{st: st, remote: remote, key: &keys.Doc, keys: keys, user: user, log: log, kick: make(chan struct{}, 1)}
}

// OnChange registers fn to be called with the ids of documents that a
// pull or a merge changed.
func (e *Engine) OnChange(fn func(ids []string)) {
	e.mu.Lock()
	e.onChange = append(e.onChange, fn)
	e.mu.Unlock()
}

func (e *Engine) changed(ids []string) {
	if len(ids) == 0 {
		return
	}
	e.mu.Lock()
	fns := append([]func([]string){}, e.onChange...)
	e.mu.Unlock()
	for _, fn := range fns {
		fn(ids)
	}
}

// Kick asks the running engine to sync soon.
func (e *Engine) Kick() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

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
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := tx.Put(bucketDocs, id, v); err != nil {
		return err
	}
	if r.needsPush() {
		err = tx.Put(bucketDirty, id, nil)
	} else {
		err = tx.Delete(bucketDirty, id)
	}
	if err != nil {
		return err
	}
	return e.indexType(tx, id, r)
}

func (e *Engine) indexType(tx *localstore.Tx, id string, r *record) error {
	e.mu.Lock()
	types := e.types
	e.mu.Unlock()
	t := ""
	if !r.Deleted {
		t = docType(r.Body)
	}
	for _, it := range types {
		var err error
		if it == t {
			err = tx.Put(typeBucket(it), id, nil)
		} else {
			err = tx.Delete(typeBucket(it), id)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

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
	return out, err
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
			return err
		}
		if stampOf(v) <= c.Stamp {
			if err := tx.Delete(bucketChanged, c.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// needsPush: a local change the provider has not taken yet (a document
// made and deleted before it ever reached the provider has nothing to
// tell).
func (r *record) needsPush() bool { return r.Dirty && !(r.Deleted && r.Rev == 0) }

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
	}
	return err
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
	return st.Update(func(tx *localstore.Tx) error {
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
}

// ForEachType calls fn with every live document of an indexed type.
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
		return err
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
	if err == nil {
		e.dirtyReady.Store(true)
	}
	return err
}

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
		return err
	}
	e.Kick()
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
		return err
	}
	e.Kick()
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

// Modify reads, changes and writes back documents in one local
// transaction: fn gets each live document's body and returns the new body,
// or del to delete it, or keep to leave it as it is. Missing or deleted
// documents are skipped.
func (e *Engine) Modify(ids []string, fn func(id string, body []byte) (newBody []byte, del, keep bool, err error)) error {
	changed := false
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
		e.Kick()
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
	return d, err
}

// ForEach calls fn with every live document.
func (e *Engine) ForEach(fn func(*Doc) error) error {
	return e.st.View(func(tx *localstore.Tx) error {
		return tx.ForEach(bucketDocs, func(id string, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("docsync: local record %s: %w", id, err)
			}
			if r.Deleted {
				return nil
			}
			return fn(&Doc{ID: id, Rev: r.Rev, Body: r.Body})
		})
	})
}

// Status reports sync progress and health.
func (e *Engine) Status() Status {
	pending := 0
	if err := e.ensureDirtyIndex(); err != nil {
		e.log.Warn("docsync: indexing local changes", "err", err)
	}
	_ = e.st.View(func(tx *localstore.Tx) error {
		pending = tx.Count(bucketDirty)
		return nil
	})
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.status
	s.Pending = pending
	return s
}

func (e *Engine) setStatus(fn func(*Status)) {
	e.mu.Lock()
	fn(&e.status)
	e.mu.Unlock()
}

func (e *Engine) lastSeq(tx *localstore.Tx) (uint64, error) {
	v, err := tx.Get(bucketState, keySeq)
	if errors.Is(err, localstore.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(string(v), 10, 64)
}

// Sync pulls the provider's changes, then pushes local ones, merging
// conflicts, until nothing is left or the provider is unreachable. A
// panic in the round (say, in reading what the provider sent) fails the
// round, like an unreachable provider, instead of bitmaskd.
func (e *Engine) Sync(ctx context.Context) error {
	e.syncMu.Lock()
	defer e.syncMu.Unlock()
	e.setStatus(func(s *Status) { s.Syncing, s.Pulled = true, 0 })
	var err error
	if p := recovered.Do(func() { err = e.sync(ctx) }); p != nil {
		e.log.Error("docsync: a sync round panicked", p.LogAttrs()...)
		err = fmt.Errorf("docsync: sync failed: %w", p)
	}
	e.setStatus(func(s *Status) {
		s.Syncing = false
		s.Online = err == nil
		if err != nil {
			s.LastError = err.Error()
		} else {
			s.LastError, s.LastSync = "", time.Now()
		}
	})
	return err
}

func (e *Engine) sync(ctx context.Context) error {
	for round := 0; round < 20; round++ {
		if err := e.pull(ctx); err != nil {
			return err
		}
		pushed, err := e.push(ctx)
		if err != nil {
			return err
		}
		if pushed == 0 {
			return nil
		}
	}
	return errors.New("docsync: documents still conflicting after 20 rounds")
}

func (e *Engine) pull(ctx context.Context) error {
	for {
		var since uint64
		if err := e.st.View(func(tx *localstore.Tx) (err error) { since, err = e.lastSeq(tx); return }); err != nil {
			return err
		}
		resp, err := e.remote.Changes(ctx, since, pageSize, 0)
		if err != nil {
			return fmt.Errorf("docsync: pull since %d: %w", since, err)
		}
		if resp.LastSeq < since {
			return fmt.Errorf("docsync: provider's sequence went back from %d to %d; refusing", since, resp.LastSeq)
		}
		// A page with more after it ends at a later sequence than the
		// one asked from; else asking again would get the same page
		// for ever.
		if resp.More && resp.LastSeq == since {
			return fmt.Errorf("docsync: provider says there are more changes after %d but its page ends there; refusing", since)
		}
		var ids []string
		err = e.st.Update(func(tx *localstore.Tx) error {
			ids = ids[:0]
			for i := range resp.Changes {
				ok, err := e.applySafely(tx, &resp.Changes[i])
				if err != nil {
					return err
				}
				if ok {
					ids = append(ids, resp.Changes[i].ID)
				}
			}
			return tx.Put(bucketState, keySeq, []byte(strconv.FormatUint(resp.LastSeq, 10)))
		})
		if err != nil {
			return err
		}
		e.setStatus(func(s *Status) {
			s.LastSeq = resp.LastSeq
			s.Head = max(resp.Head, resp.LastSeq)
			s.Pulled += len(resp.Changes)
		})
		e.changed(ids)
		if !resp.More {
			return nil
		}
	}
}

// applySafely is apply, with a panic in applying the document (one this
// bitmaskd cannot take) turned into a refusal, as for a document that
// fails authentication: logged (what and where, not the document),
// counted, and passed over, so it neither stops the pull nor comes back
// at the next one; a newer revision of it is applied as usual.
func (e *Engine) applySafely(tx *localstore.Tx, d *providerapi.Doc) (changed bool, err error) {
	if p := recovered.Do(func() { changed, err = e.apply(tx, d) }); p != nil {
		e.log.Error("docsync: applying a document panicked; refused", append([]any{"doc", d.ID, "rev", d.Rev}, p.LogAttrs()...)...)
		e.setStatus(func(s *Status) { s.Rejected++ })
		return false, nil
	}
	return changed, err
}

// testHookApply, set only by tests, runs when a pulled document has been
// opened, before it is stored.
var testHookApply func(id string, body []byte)

// apply applies one document of the changes feed; it reports whether the
// local document changed. Documents that fail authentication or replay an
// older revision are refused (logged, counted) and change nothing.
func (e *Engine) apply(tx *localstore.Tx, d *providerapi.Doc) (bool, error) {
	r, err := getRecord(tx, d.ID)
	if err != nil {
		return false, err
	}
	if r != nil && d.Rev <= r.Rev {
		if d.Rev < r.Rev {
			e.log.Warn("refusing a replayed older revision", "doc", d.ID, "rev", d.Rev, "known", r.Rev)
			e.setStatus(func(s *Status) { s.Rejected++ })
		}
		return false, nil
	}
	body, err := seal.OpenDoc(e.key, e.user, d.ID, d.Rev, d.Deleted, d.Ciphertext)
	if err != nil {
		e.log.Warn("refusing a document that fails authentication", "doc", d.ID, "rev", d.Rev)
		e.setStatus(func(s *Status) { s.Rejected++ })
		return false, nil
	}
	if d.Deleted {
		body = nil
	}
	if testHookApply != nil {
		testHookApply(d.ID, body)
	}
	if r != nil {
		if ver, ours := r.Pushing.matches(d); ours {
			// Our own push, whose answer we never got.
			r.acknowledge(d.Rev, ver, d.Deleted, body)
			return false, e.putRecord(tx, d.ID, r)
		}
	}
	if err := journal(tx, d.ID); err != nil {
		return false, err
	}
	if r == nil || !r.Dirty {
		return true, e.putRecord(tx, d.ID, &record{Rev: d.Rev, Deleted: d.Deleted, Body: body})
	}
	e.merge(r, d.Rev, d.Deleted, body)
	return true, e.putRecord(tx, d.ID, r)
}

// merge folds a remote revision into a dirty local record: deletion wins,
// else Merge3. The record stays dirty, now based on the remote revision.
func (e *Engine) merge(r *record, rev uint64, del bool, body []byte) {
	switch {
	case del || r.Deleted:
		r.Body, r.Deleted = nil, true
	default:
		var base []byte
		if !r.BaseDel {
			base = r.Base
		}
		r.Body = Merge3(base, r.Body, body)
	}
	r.Rev, r.Base, r.BaseDel = rev, body, del
	r.Ver++
}

type pending struct {
	id   string
	ver  uint64
	push providerapi.DocPush
}

func (e *Engine) push(ctx context.Context) (int, error) {
	if err := e.ensureDirtyIndex(); err != nil {
		return 0, err
	}
	if err := e.pushBlobs(ctx); err != nil {
		return 0, err
	}
	total := 0
	for {
		var batch []pending
		err := e.st.View(func(tx *localstore.Tx) error {
			var ids []string
			err := tx.ForEach(bucketDirty, func(id string, _ []byte) error {
				if len(ids) >= pushBatch {
					return errStop
				}
				ids = append(ids, id)
				return nil
			})
			if err != nil && err != errStop {
				return err
			}
			for _, id := range ids {
				r, err := getRecord(tx, id)
				if err != nil {
					return err
				}
				if r == nil || !r.needsPush() {
					continue
				}
				ct, err := seal.SealDoc(e.key, e.user, id, r.Rev+1, r.Deleted, r.Body)
				if err != nil {
					return err
				}
				batch = append(batch, pending{id: id, ver: r.Ver, push: providerapi.DocPush{
					ID: id, BaseRev: r.Rev, Rev: r.Rev + 1, Deleted: r.Deleted, Ciphertext: ct,
				}})
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		if len(batch) == 0 {
			return total, nil
		}
		docs := make([]providerapi.DocPush, len(batch))
		for i := range batch {
			docs[i] = batch[i].push
		}
		err = e.st.Update(func(tx *localstore.Tx) error {
			for _, p := range batch {
				r, err := getRecord(tx, p.id)
				if err != nil || r == nil {
					return err
				}
				h := sha256.Sum256(p.push.Ciphertext)
				at := attempt{Hash: h[:], Ver: p.ver}
				if r.Pushing != nil && r.Pushing.Rev == p.push.Rev {
					r.Pushing.Attempts = append(r.Pushing.Attempts[max(0, len(r.Pushing.Attempts)-7):], at)
				} else {
					r.Pushing = &inflight{Rev: p.push.Rev, Attempts: []attempt{at}}
				}
				if err := e.putRecord(tx, p.id, r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		resp, err := e.remote.Push(ctx, docs)
		if err != nil {
			return total, fmt.Errorf("docsync: push of %d documents: %w", len(docs), err)
		}
		var merged []string
		conflicts := 0
		err = e.st.Update(func(tx *localstore.Tx) error {
			merged, conflicts = merged[:0], 0
			for i, res := range resp.Results {
				p := &batch[i]
				if res.ID != p.id {
					return fmt.Errorf("docsync: push result %d is for %q, not %q", i, res.ID, p.id)
				}
				r, err := getRecord(tx, p.id)
				if err != nil {
					return err
				}
				if r == nil {
					continue
				}
				switch res.Status {
				case providerapi.PushOK:
					var body []byte
					if !p.push.Deleted && r.Ver != p.ver {
						body, _ = seal.OpenDoc(e.key, e.user, p.id, p.push.Rev, false, p.push.Ciphertext)
					}
					r.acknowledge(p.push.Rev, p.ver, p.push.Deleted, body)
				case providerapi.PushConflict:
					if cur := res.Current; cur != nil {
						if ver, ours := r.Pushing.matches(cur); ours {
							// The provider has an earlier attempt of ours
							// whose answer was lost.
							var body []byte
							if !cur.Deleted {
								body, _ = seal.OpenDoc(e.key, e.user, cur.ID, cur.Rev, false, cur.Ciphertext)
							}
							r.acknowledge(cur.Rev, ver, cur.Deleted, body)
							break
						}
					}
					r.Pushing = nil
					conflicts++
					if res.Current == nil {
						// The provider has no such document (any
						// more): start its history afresh.
						r.Rev = 0
						break
					}
					cur := res.Current
					if cur.ID != p.id || cur.Rev < r.Rev {
						return fmt.Errorf("docsync: provider answered a conflict on %s with an older or foreign revision", p.id)
					}
					body, err := seal.OpenDoc(e.key, e.user, cur.ID, cur.Rev, cur.Deleted, cur.Ciphertext)
					if err != nil {
						return fmt.Errorf("docsync: provider's current revision of %s fails authentication", p.id)
					}
					if cur.Deleted {
						body = nil
					}
					e.merge(r, cur.Rev, cur.Deleted, body)
					merged = append(merged, p.id)
					if err := journal(tx, p.id); err != nil {
						return err
					}
				default:
					return fmt.Errorf("docsync: unknown push status %q", res.Status)
				}
				if err := e.putRecord(tx, p.id, r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		e.changed(merged)
		total += len(batch)
		if conflicts == len(batch) {
			// Everything conflicted: pull before trying again so
			// the feed catches us up.
			return total, nil
		}
	}
}

// Run syncs at start, whenever the provider's notification stream says a
// change landed, when Kick is called, and every interval; it retries with
// backoff while the provider is unreachable. It returns when ctx ends.
func (e *Engine) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 5 * time.Minute
	}
	// The notification stream ends with ctx; Run returns after it, so
	// nothing of the engine runs once Run has returned.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); e.follow(ctx) }()
	defer wg.Wait()
	backoff := time.Duration(0)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.kick:
		case <-timer.C:
		}
		if err := e.Sync(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			backoff = min(max(2*backoff, time.Second), time.Minute)
			e.log.Info("sync failed, will retry", "in", backoff, "err", err)
			timer.Reset(backoff)
			continue
		}
		backoff = 0
		timer.Reset(interval)
	}
}

// follow keeps the notification stream open, reconnecting with backoff,
// and kicks a sync for each change that is newer than what we have.
func (e *Engine) follow(ctx context.Context) {
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		connected := time.Now()
		var err error
		// A panic in reading the stream or in a hook ends this stream,
		// like a cut connection, not bitmaskd.
		if p := recovered.Do(func() {
			err = e.remote.Events(ctx, func(ev providerapi.Event) {
				e.mu.Lock()
				have := e.status.LastSeq
				hooks := append([]func(providerapi.Event){}, e.onEvent...)
				e.mu.Unlock()
				if ev.Seq > have {
					e.Kick()
				}
				for _, fn := range hooks {
					fn(ev)
				}
			})
		}); p != nil {
			e.log.Error("docsync: the notification stream panicked", p.LogAttrs()...)
			err = p
		}
		if ctx.Err() != nil {
			return
		}
		if time.Since(connected) > time.Minute {
			backoff = 0
		}
		backoff = min(max(2*backoff, 500*time.Millisecond), 30*time.Second)
		e.log.Debug("notification stream ended, reconnecting", "in", backoff, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		e.Kick() // catch up on what the gap may have missed
	}
}
