// Package fulltext is an account's encrypted full-text index: it answers
// IMAP SEARCH BODY and TEXT without reading every message, with exactly
// the answers of the scan (reading each message's text, internal/mailtext,
// and looking for the string in it).
//
// The index maps tokens (maximal runs of letters and digits of a
// message's lower-cased text, internal/mailtext) to the messages that
// hold them, by message id (a message keeps its id when it moves between
// mailboxes; a copy is a new message). It lives in the account's local
// store, sealed under the storage secret like everything else there, as
// immutable segments cut into equal blocks (segment.go); the recent
// messages wait in memory until there are enough of them, or until the
// worker is idle, to make a segment. Segments merge as they pile up. Only
// the segments' heads (their documents and dictionaries) are held in
// memory; postings are read by block when a search needs them.
//
// A worker (build.go) follows the mail store: at start it indexes what is
// not indexed yet (after a restart, only what came since the last
// segment was written), then every message added (appended, copied,
// moved, synced in); an expunged message's entry goes when its segment
// next merges (a search never sees it before: it goes from a mailbox's
// messages to the index). Searching
// (search.go) never waits for it: messages it has not indexed yet are
// reported as not covered, and the caller scans them.
//
// docs/design.md ("The full-text index"), docs/threat-model.md and
// docs/formats.md say more.
package fulltext

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"

	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/mailstore"
)

// Searcher answers SEARCH BODY/TEXT from the index.
type Searcher interface {
	// Search returns the UIDs in mailbox mbox (with this uidValidity) whose text (all=true:
	// headers and body, as SEARCH TEXT; false: body only, as SEARCH BODY) contains query
	// (compared the way the scan compares: lower case, substring). Indexed reports which
	// UIDs the answer covers; the caller scans the others. ok=false: no answer, scan all.
	Search(ctx context.Context, mbox string, uidValidity uint32, query string, all bool) (hits []uint32, indexed func(uid uint32) bool, ok bool, err error)
}

// Source is what the index reads of an account's mail; *mailstore.Store
// implements it. A message's content never changes under its id.
type Source interface {
	Mailboxes() []mailstore.MailboxInfo
	Mailbox(name string) (mailstore.MailboxInfo, error)
	Messages(name string) ([]mailstore.Message, error)
	Raw(ctx context.Context, id string) ([]byte, error)
	Watch(mbox string) (<-chan mailstore.Event, func())
}

// Index is one account's full-text index.
type Index struct {
	src Source
	st  *localstore.Store
	log *slog.Logger
	cfg Config

	mu      sync.RWMutex
	segs    []*segment        // on disk, by increasing document numbers
	mem     *memSegment       // indexed, not yet written
	ids     map[string]uint32 // message id -> document number
	nextDoc uint32
	nextSeg uint64

	// The worker's (build.go).
	queue   eventQueue
	skipped map[string]bool // left to the scan (too large, unreadable)
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	idle    chan struct{} // closed and renewed each time the worker has caught up
	idleMu  sync.Mutex
}

// Config tunes an Index; the zero value is what bitmaskd uses.
type Config struct {
	// FlushDocs and FlushBytes bound the messages waiting in memory:
	// reaching either writes them as a segment. Zero: 8192 and 24 MB.
	FlushDocs, FlushBytes int
	// Log receives the worker's warnings (never a message's content).
	Log *slog.Logger
}

// The index's place in the local store: bucketMeta holds the list of
// segments (keyState); each segment's blocks are in a bucket of its own.
const (
	bucketMeta = "fulltext"
	keyState   = "segments"
	keyPending = "pending"
)

func segBucket(id uint64) string { return "fulltext-segment-" + strconv.FormatUint(id, 10) }

// Open loads the index kept in st (the segments' heads) and starts the
// worker that brings it up to date with src and keeps it there. Close
// stops it.
func Open(src Source, st *localstore.Store, cfg Config) (*Index, error) {
	if cfg.FlushDocs <= 0 {
		cfg.FlushDocs = 8192
	}
	if cfg.FlushBytes <= 0 {
		cfg.FlushBytes = 24 << 20
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	ix := &Index{
		src: src, st: st, log: cfg.Log, cfg: cfg,
		mem: newMem(), ids: map[string]uint32{}, skipped: map[string]bool{},
		done: make(chan struct{}), idle: make(chan struct{}),
	}
	if err := ix.load(); err != nil {
		return nil, err
	}
	ix.ctx, ix.cancel = context.WithCancel(context.Background())
	go ix.run()
	return ix, nil
}

// Close stops the worker and writes what waits in memory as a segment,
// so the next start does not index it again.
func (ix *Index) Close() error {
	ix.cancel()
	<-ix.done
	return ix.flush(false)
}

// state is the list of segments as stored: each one's id and number of
// blocks of postings and of head, and the next document and segment
// numbers.
type segRef struct {
	id                 uint64
	postBlks, headBlks uint32
}

func encodeState(nextDoc uint32, nextSeg uint64, segs []*segment) []byte {
	b := append([]byte(nil), "FTM1"...)
	b = binary.AppendUvarint(b, uint64(nextDoc))
	b = binary.AppendUvarint(b, nextSeg)
	b = binary.AppendUvarint(b, uint64(len(segs)))
	for _, s := range segs {
		b = binary.AppendUvarint(b, s.id)
		b = binary.AppendUvarint(b, uint64(s.postBlks))
		b = binary.AppendUvarint(b, uint64(s.headBlks))
	}
	return b
}

func decodeState(b []byte) (nextDoc uint32, nextSeg uint64, refs []segRef, err error) {
	if len(b) < 4 || string(b[:4]) != "FTM1" {
		return 0, 0, nil, errCorrupt
	}
	r := reader{b: b[4:]}
	nd, ns, n := r.uvarint(), r.uvarint(), r.uvarint()
	if nd > 1<<32-1 || n > uint64(len(r.b)) {
		return 0, 0, nil, errCorrupt
	}
	for range n {
		id, p, h := r.uvarint(), r.uvarint(), r.uvarint()
		if p > 1<<31 || h == 0 || h > 1<<31 {
			return 0, 0, nil, errCorrupt
		}
		refs = append(refs, segRef{id: id, postBlks: uint32(p), headBlks: uint32(h)})
	}
	if r.err || len(r.b) != 0 {
		return 0, 0, nil, errCorrupt
	}
	return uint32(nd), ns, refs, nil
}

// load reads the list of segments and their heads, and removes a segment
// whose writing was cut short. An index that cannot be read is started
// again (the scan answers meanwhile): it is never a reason to refuse the
// account.
func (ix *Index) load() error {
	var refs []segRef
	var pending []byte
	err := ix.st.View(func(tx *localstore.Tx) error {
		v, err := tx.Get(bucketMeta, keyState)
		switch {
		case errors.Is(err, localstore.ErrNotFound):
		case err != nil:
			return err
		default:
			if ix.nextDoc, ix.nextSeg, refs, err = decodeState(v); err != nil {
				return err
			}
		}
		pending, err = tx.Get(bucketMeta, keyPending)
		if errors.Is(err, localstore.ErrNotFound) {
			err = nil
		}
		return err
	})
	if err != nil {
		ix.log.Warn("fulltext: the index's list of segments is unreadable; indexing again", "err", err)
		ix.nextDoc, refs, pending = 0, nil, nil
		// Segment numbers go on past any the unreadable list named.
		ix.nextSeg = max(ix.nextSeg, 1<<40)
	}
	if pending != nil {
		if err := ix.dropPending(pending, refs); err != nil {
			return fmt.Errorf("fulltext: removing a segment cut short: %w", err)
		}
	}
	for _, ref := range refs {
		s, err := ix.readHead(ref)
		if err != nil {
			// A segment that cannot be read is left out: its messages
			// are indexed again.
			ix.log.Warn("fulltext: an index segment is unreadable; its messages are indexed again", "err", err)
			continue
		}
		ix.segs = append(ix.segs, s)
		for i, id := range s.ids {
			ix.ids[id] = s.docs[i]
		}
	}
	return nil
}

// dropPending removes the blocks of a segment that was being written
// when the program stopped.
func (ix *Index) dropPending(v []byte, refs []segRef) error {
	id, n := binary.Uvarint(v)
	return ix.st.Update(func(tx *localstore.Tx) error {
		if n > 0 && !containsRef(refs, id) {
			if err := tx.DeleteBucket(segBucket(id)); err != nil {
				return err
			}
		}
		return tx.Delete(bucketMeta, keyPending)
	})
}

func containsRef(refs []segRef, id uint64) bool {
	for _, r := range refs {
		if r.id == id {
			return true
		}
	}
	return false
}

func (ix *Index) readHead(ref segRef) (*segment, error) {
	b := make([]byte, 0, int(ref.headBlks)*blockSize)
	err := ix.st.View(func(tx *localstore.Tx) error {
		for i := range ref.headBlks {
			v, err := tx.GetSeq(segBucket(ref.id), uint64(ref.postBlks+i))
			if err != nil {
				return err
			}
			b = append(b, v...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s, err := decodeHead(b)
	if err != nil {
		return nil, err
	}
	if s.postLen > uint64(ref.postBlks)*blockSize {
		return nil, errCorrupt
	}
	s.id, s.postBlks, s.headBlks = ref.id, ref.postBlks, ref.headBlks
	return s, nil
}

// postings reads the postings [off, off+n) of segment s in tx.
func readPostings(tx *localstore.Tx, s *segment, cache map[uint32][]byte, off uint64, n uint32) ([]byte, error) {
	first, last := uint32(off/blockSize), uint32((off+uint64(n)-1)/blockSize)
	block := func(i uint32) ([]byte, error) {
		if b, ok := cache[i]; ok {
			return b, nil
		}
		if i >= s.postBlks {
			return nil, errCorrupt
		}
		b, err := tx.GetSeq(segBucket(s.id), uint64(i))
		if err == nil && len(b) != blockSize {
			err = errCorrupt
		}
		if err != nil {
			return nil, fmt.Errorf("fulltext: reading postings: %w", err)
		}
		cache[i] = b
		return b, nil
	}
	if first == last {
		b, err := block(first)
		if err != nil {
			return nil, err
		}
		start := off % blockSize
		return b[start : start+uint64(n)], nil
	}
	out := make([]byte, 0, n)
	for i := first; i <= last; i++ {
		b, err := block(i)
		if err != nil {
			return nil, err
		}
		lo, hi := uint64(0), uint64(blockSize)
		if i == first {
			lo = off % blockSize
		}
		if i == last {
			hi = (off+uint64(n)-1)%blockSize + 1
		}
		out = append(out, b[lo:hi]...)
	}
	return out, nil
}
