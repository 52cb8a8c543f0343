package fulltext

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"slices"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/bitmask-go/bitmask/internal/localstore"
	"github.com/bitmask-go/bitmask/internal/mailstore"
	"github.com/bitmask-go/bitmask/internal/mailtext"
	"github.com/bitmask-go/bitmask/internal/recovered"
)

// maxMessage is the largest message the index takes: the text SEARCH
// BODY reads of a larger one may be cut short where SEARCH TEXT's is not
// (mailtext.MaxText), so it is left to the scan.
const maxMessage = mailtext.MaxText / 4

// idleFlush is how long the worker waits, with nothing to do, before it
// writes the messages waiting in memory as a segment.
const idleFlush = 5 * time.Second

// memSegment is the messages indexed since the last segment was
// written: their postings, encoded as on disk, by token.
type memSegment struct {
	docs  []uint32
	ids   []string
	terms map[string]*memPosting
	size  int // roughly the bytes it holds
}

type memPosting struct {
	b     []byte
	prev  uint32 // the last entry's document plus one
	doc   uint32 // the entry not yet encoded: its document
	flags uint8  // and flags; 0 when there is none
}

func newMem() *memSegment { return &memSegment{terms: map[string]*memPosting{}} }

// add records document doc with its tokens.
func (m *memSegment) add(doc uint32, id string, toks map[string]uint8) {
	m.docs = append(m.docs, doc)
	m.ids = append(m.ids, id)
	m.size += len(id) + 24
	for t, f := range toks {
		p := m.terms[t]
		if p == nil {
			p = &memPosting{}
			m.terms[t] = p
			m.size += len(t) + 96
		}
		if p.flags != 0 {
			n := len(p.b)
			p.b, p.prev = appendPosting(p.b, p.prev, p.doc, p.flags)
			m.size += len(p.b) - n
		}
		p.doc, p.flags = doc, f
	}
}

// postings is the posting list of p, encoded.
func (p *memPosting) postings() []byte {
	if p.flags == 0 {
		return p.b
	}
	b, _ := appendPosting(slices.Clip(p.b), p.prev, p.doc, p.flags)
	return b
}

// isWord says whether r is part of a token.
func isWord(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || '0' <= r && r <= '9' || 'A' <= r && r <= 'Z'
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// eachToken calls fn with each maximal run of letters and digits of s
// (valid UTF-8 only: an invalid byte ends a token).
func eachToken(s []byte, fn func(tok []byte)) {
	start := -1
	for i := 0; i < len(s); {
		r, w := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, w = utf8.DecodeRune(s[i:])
		}
		word := isWord(r) && (r != utf8.RuneError || w > 1)
		if word && start < 0 {
			start = i
		} else if !word && start >= 0 {
			fn(s[start:i])
			start = -1
		}
		i += w
	}
	if start >= 0 {
		fn(s[start:])
	}
}

// tokenizer collects a message's tokens, reusing its buffers.
type tokenizer struct {
	toks map[string]uint8
	buf  []byte
}

// tokens reads the tokens of a message, each with where it is (a text
// part, a header field value); ok is false for a message the index
// leaves to the scan.
func (tz *tokenizer) tokens(raw []byte) (toks map[string]uint8, ok bool) {
	if len(raw) > maxMessage {
		return nil, false
	}
	if tz.toks == nil {
		tz.toks = map[string]uint8{}
	}
	clear(tz.toks)
	ok = true
	p := recovered.Do(func() {
		mailtext.Pieces(raw, func(header bool, text []byte) {
			// Lower a copy: text may be the message itself.
			tz.buf = append(tz.buf[:0], text...)
			low := mailtext.Lower(tz.buf)
			f := uint8(flagBody)
			if header {
				f = flagHeader
			}
			eachToken(low, func(t []byte) {
				if len(t) > maxToken {
					ok = false
					return
				}
				tz.toks[string(t)] |= f
			})
		})
	})
	if p != nil || !ok {
		return nil, false
	}
	if cap(tz.buf) > 1<<20 {
		tz.buf = nil
	}
	return tz.toks, true
}

// eventQueue is the worker's queue of the mail store's events, filled by
// the watchers without ever blocking.
type eventQueue struct {
	mu          sync.Mutex
	events      []mailstore.Event
	first, last time.Time // of the oldest event waiting and of the latest
	signal      chan struct{}
}

// push queues an event the worker acts on (added messages, the mailbox
// list); the others are dropped. Flags are not indexed; an expunge needs
// nothing now: the message may be moving (its id leaves one mailbox
// before it enters the other), a search never sees it (it goes from a
// mailbox's messages to the index), and its entry goes when its segment
// merges with one the message is in none of.
func (q *eventQueue) push(ev mailstore.Event) {
	if ev.Kind != mailstore.EventAdded && ev.Kind != mailstore.EventMailboxes {
		return
	}
	q.mu.Lock()
	now := time.Now()
	if len(q.events) == 0 {
		q.first = now
	}
	q.events = append(q.events, ev)
	q.last = now
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// quiet is how much longer to wait for the store to have been quiet for
// indexQuiet (0: it has been, or indexQueueMax events wait, or the
// oldest has waited indexWaitMax).
func (q *eventQueue) quiet() time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.events) == 0 || len(q.events) >= indexQueueMax {
		return 0
	}
	return max(0, min(indexQuiet-time.Since(q.last), indexWaitMax-time.Since(q.first)))
}

func (q *eventQueue) take() []mailstore.Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	evs := q.events
	q.events = nil
	return evs
}

// run is the worker: it follows every mailbox, indexes what is missing,
// then what changes.
func (ix *Index) run() {
	defer close(ix.done)
	ix.queue.signal = make(chan struct{}, 1)
	watched := map[string]func(){}
	var wg sync.WaitGroup
	defer func() {
		for _, stop := range watched {
			stop()
		}
		wg.Wait()
	}()
	follow := func(name string) {
		evs, stop := ix.src.Watch(name)
		watched[name] = stop
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range evs {
				ix.queue.push(ev)
			}
		}()
	}
	follow("")
	var tz tokenizer
	// syncBoxes follows the mailbox list: new mailboxes are watched and
	// indexed, gone ones forgotten.
	syncBoxes := func() {
		names := map[string]bool{}
		for _, mb := range ix.src.Mailboxes() {
			names[mb.Name] = true
			if watched[mb.Name] == nil {
				follow(mb.Name)
				ix.reconcile(mb.Name, &tz)
			}
		}
		for name, stop := range watched {
			if name != "" && !names[name] {
				stop()
				delete(watched, name)
			}
		}
	}
	syncBoxes()
	ix.flushIfFull(true)
	timer := time.NewTimer(idleFlush)
	defer timer.Stop()
	for {
		ix.markIdle()
		select {
		case <-ix.ctx.Done():
			return
		case <-timer.C:
			if err := ix.flush(true); err != nil {
				ix.log.Warn("fulltext: writing an index segment", "err", err)
			}
			continue
		case <-ix.queue.signal:
		}
		// New messages are indexed once the store's writes pause
		// (indexQuiet), not one by one as a client appends or an
		// import stores them: the indexing (a read and decryption of
		// each message, its tokens) then no longer takes the cores
		// from the writer. Searches meanwhile scan what is not
		// indexed yet.
		for wait := ix.queue.quiet(); wait > 0; wait = ix.queue.quiet() {
			select {
			case <-ix.ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		for _, ev := range ix.queue.take() {
			if ix.ctx.Err() != nil {
				return
			}
			switch ev.Kind {
			case mailstore.EventAdded:
				ix.indexOne(ev.Message.ID, &tz)
			case mailstore.EventMailboxes:
				syncBoxes()
			}
		}
		ix.flushIfFull(false)
		timer.Reset(idleFlush)
	}
}

// The worker waits for the mail store's events to pause for indexQuiet
// before it indexes, unless indexQueueMax of them wait or the oldest has
// waited indexWaitMax (a steady trickle of writes).
const (
	indexQuiet    = time.Second
	indexWaitMax  = time.Minute
	indexQueueMax = 100_000
)

// markIdle tells WaitIdle's callers the worker has caught up.
func (ix *Index) markIdle() {
	ix.idleMu.Lock()
	close(ix.idle)
	ix.idle = make(chan struct{})
	ix.idleMu.Unlock()
}

// reconcile indexes the messages of a mailbox that are not indexed.
func (ix *Index) reconcile(name string, tz *tokenizer) {
	msgs, err := ix.src.Messages(name)
	if err != nil {
		return // gone meanwhile: its events say so
	}
	for _, m := range msgs {
		if ix.ctx.Err() != nil {
			return
		}
		ix.indexOne(m.ID, tz)
		ix.flushIfFull(false)
	}
}

// indexOne indexes a message unless it is indexed (or left to the scan).
func (ix *Index) indexOne(id string, tz *tokenizer) {
	ix.mu.RLock()
	_, have := ix.ids[id]
	ix.mu.RUnlock()
	if have || ix.skipped[id] {
		return
	}
	raw, err := ix.src.Raw(ix.ctx, id)
	if err != nil {
		// Expunged meanwhile, or its content not here yet: the scan
		// reads it; a later start tries again.
		if !errors.Is(err, mailstore.ErrNoMessage) {
			ix.skipped[id] = true
		}
		return
	}
	toks, ok := tz.tokens(raw)
	if !ok {
		ix.skipped[id] = true
		return
	}
	ix.mu.Lock()
	doc := ix.nextDoc
	ix.nextDoc++
	ix.mem.add(doc, id, toks)
	ix.ids[id] = doc
	ix.mu.Unlock()
	runtime.Gosched() // one worker, yielding to the sessions
}

// flushIfFull writes the messages in memory as a segment when there are
// enough of them (or, with any, when the build just caught up).
func (ix *Index) flushIfFull(caughtUp bool) {
	ix.mu.RLock()
	n, size := len(ix.mem.docs), ix.mem.size
	ix.mu.RUnlock()
	if n == 0 || (!caughtUp && n < ix.cfg.FlushDocs && size < ix.cfg.FlushBytes) {
		return
	}
	if err := ix.flush(true); err != nil {
		ix.log.Warn("fulltext: writing an index segment", "err", err)
	}
}

// flush writes the messages in memory as a segment and, with merge,
// merges the newest segments while they are as large as the one before.
// Only the worker (or Close, after it) calls it.
func (ix *Index) flush(merge bool) error {
	ix.mu.RLock()
	mem := ix.mem
	ix.mu.RUnlock()
	if len(mem.docs) == 0 {
		return nil
	}
	// mem changes only in the worker, which is here: read it unlocked.
	terms := make([]string, 0, len(mem.terms))
	for t := range mem.terms {
		terms = append(terms, t)
	}
	slices.Sort(terms)
	w, err := ix.newWriter()
	if err != nil {
		return err
	}
	tb := make([][]byte, len(terms))
	sizes := make([]uint32, len(terms))
	for i, t := range terms {
		p := mem.terms[t].postings()
		tb[i], sizes[i] = []byte(t), uint32(len(p))
		if err := w.write(p); err != nil {
			return err
		}
	}
	s, err := w.finish(mem.docs, mem.ids, tb, sizes)
	if err != nil {
		return err
	}
	if err := ix.commit(s, nil, nil); err != nil {
		return err
	}
	for merge {
		ix.mu.RLock()
		n := len(ix.segs)
		merge = n >= 2 && len(ix.segs[n-1].docs) >= len(ix.segs[n-2].docs)
		var a, b *segment
		if merge {
			a, b = ix.segs[n-2], ix.segs[n-1]
		}
		ix.mu.RUnlock()
		if merge {
			if err := ix.merge(a, b); err != nil {
				return err
			}
		}
	}
	return nil
}

// commit makes s part of the index in place of the segments old (which
// it merges), in one transaction with the list; drop, if set, runs with
// the change (under the lock).
func (ix *Index) commit(s *segment, old []*segment, drop func()) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	segs := slices.DeleteFunc(slices.Clone(ix.segs), func(x *segment) bool { return slices.Contains(old, x) })
	at := len(segs)
	for i, x := range segs {
		if x.docs[0] > s.docs[0] {
			at = i
			break
		}
	}
	segs = slices.Insert(segs, at, s)
	err := ix.st.Update(func(tx *localstore.Tx) error {
		for _, o := range old {
			if err := tx.DeleteBucket(segBucket(o.id)); err != nil {
				return err
			}
		}
		if err := tx.Put(bucketMeta, keyState, encodeState(ix.nextDoc, ix.nextSeg, segs)); err != nil {
			return err
		}
		return tx.Delete(bucketMeta, keyPending)
	})
	if err != nil {
		return err
	}
	ix.segs = segs
	if drop != nil {
		drop()
	}
	if old == nil {
		// A new segment of the messages in memory: searches find them
		// there until now, in the segment from now on.
		ix.mem = newMem()
	}
	return nil
}

// writer writes a segment's blocks: the postings as they come, then the
// head.
type writer struct {
	ix      *Index
	id      uint64
	buf     []byte // the block being filled
	blocks  [][]byte
	nblocks uint32 // blocks written
	postLen uint64
}

// writeBatch is how many blocks one transaction writes.
const writeBatch = 32

func (ix *Index) newWriter() (*writer, error) {
	ix.mu.Lock()
	id := ix.nextSeg
	ix.nextSeg++
	ix.mu.Unlock()
	err := ix.st.Update(func(tx *localstore.Tx) error {
		return tx.Put(bucketMeta, keyPending, binary.AppendUvarint(nil, id))
	})
	if err != nil {
		return nil, err
	}
	return &writer{ix: ix, id: id, buf: make([]byte, 0, blockSize)}, nil
}

func (w *writer) write(p []byte) error {
	w.postLen += uint64(len(p))
	for len(p) > 0 {
		n := min(len(p), blockSize-len(w.buf))
		w.buf = append(w.buf, p[:n]...)
		p = p[n:]
		if len(w.buf) == blockSize {
			if err := w.block(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *writer) block() error {
	w.blocks = append(w.blocks, w.buf)
	w.buf = make([]byte, 0, blockSize)
	if len(w.blocks) >= writeBatch {
		return w.put()
	}
	return nil
}

func (w *writer) put() error {
	err := w.ix.st.Update(func(tx *localstore.Tx) error {
		for i, b := range w.blocks {
			if err := tx.PutSeq(segBucket(w.id), uint64(w.nblocks)+uint64(i), b); err != nil {
				return err
			}
		}
		return nil
	})
	w.nblocks += uint32(len(w.blocks))
	w.blocks = w.blocks[:0]
	return err
}

// finish pads the postings, writes the head and returns the segment
// (not yet in the list: commit).
func (w *writer) finish(docs []uint32, ids []string, terms [][]byte, sizes []uint32) (*segment, error) {
	if len(w.buf) > 0 || w.nblocks+uint32(len(w.blocks)) == 0 {
		w.buf = pad(w.buf)
		if err := w.block(); err != nil {
			return nil, err
		}
	}
	postBlks := w.nblocks + uint32(len(w.blocks))
	head := encodeHead(docs, ids, terms, sizes, w.postLen)
	for b := range slices.Chunk(head, blockSize) {
		w.blocks = append(w.blocks, b)
	}
	if err := w.put(); err != nil {
		return nil, err
	}
	s, err := decodeHead(head)
	if err != nil {
		return nil, err // a bug: what we wrote does not read back
	}
	s.id, s.postBlks, s.headBlks = w.id, postBlks, w.nblocks-postBlks
	return s, nil
}

// merge writes segments a and b (neighbours, a before b) as one, leaving
// out the messages gone from every mailbox, and puts it in their place.
func (ix *Index) merge(a, b *segment) error {
	live := map[string]bool{}
	for _, mb := range ix.src.Mailboxes() {
		msgs, _ := ix.src.Messages(mb.Name)
		for _, m := range msgs {
			live[m.ID] = true
		}
	}
	var docs []uint32
	var ids []string
	var gone []int // in a.ids and then b.ids
	keep := newBitset(b.docs[len(b.docs)-1] + 1)
	k := 0
	for _, s := range []*segment{a, b} {
		for i, d := range s.docs {
			ix.mu.RLock()
			cur, ok := ix.ids[s.ids[i]]
			ix.mu.RUnlock()
			if live[s.ids[i]] && ok && cur == d {
				docs = append(docs, d)
				ids = append(ids, s.ids[i])
				keep.set(d)
			} else {
				gone = append(gone, k)
			}
			k++
		}
	}
	// The entries of the messages left out go with the segments (a
	// message that was moving is indexed again when it arrives).
	drop := func() {
		for _, k := range gone {
			id, d := "", uint32(0)
			if k < len(a.ids) {
				id, d = a.ids[k], a.docs[k]
			} else {
				id, d = b.ids[k-len(a.ids)], b.docs[k-len(a.ids)]
			}
			if cur, ok := ix.ids[id]; ok && cur == d {
				delete(ix.ids, id)
			}
		}
	}
	if len(docs) == 0 {
		return ix.commitEmpty(drop, a, b)
	}
	w, err := ix.newWriter()
	if err != nil {
		return err
	}
	ra, rb := &seqReader{ix: ix, s: a}, &seqReader{ix: ix, s: b}
	var terms [][]byte
	var sizes []uint32
	var out []byte
	i, j := 0, 0
	for i < len(a.termStart) || j < len(b.termStart) {
		var t []byte
		c := 0
		switch {
		case i == len(a.termStart):
			c = 1
		case j == len(b.termStart):
			c = -1
		default:
			c = bytes.Compare(a.term(i), b.term(j))
		}
		out = out[:0]
		prev := uint32(0)
		emit := func(d uint32, f uint8) {
			if keep.has(d) {
				out, prev = appendPosting(out, prev, d, f)
			}
		}
		if c <= 0 {
			t = a.term(i)
			p, err := ra.next(a.postSize[i])
			if err != nil {
				return err
			}
			if err := decodePostings(p, emit); err != nil {
				return err
			}
			i++
		}
		if c >= 0 {
			t = b.term(j)
			p, err := rb.next(b.postSize[j])
			if err != nil {
				return err
			}
			if err := decodePostings(p, emit); err != nil {
				return err
			}
			j++
		}
		if len(out) == 0 {
			continue
		}
		terms = append(terms, t)
		sizes = append(sizes, uint32(len(out)))
		if err := w.write(out); err != nil {
			return err
		}
	}
	s, err := w.finish(docs, ids, terms, sizes)
	if err != nil {
		return err
	}
	return ix.commit(s, []*segment{a, b}, drop)
}

// commitEmpty drops segments that hold no live message.
func (ix *Index) commitEmpty(drop func(), old ...*segment) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	segs := slices.DeleteFunc(slices.Clone(ix.segs), func(x *segment) bool { return slices.Contains(old, x) })
	err := ix.st.Update(func(tx *localstore.Tx) error {
		for _, o := range old {
			if err := tx.DeleteBucket(segBucket(o.id)); err != nil {
				return err
			}
		}
		return tx.Put(bucketMeta, keyState, encodeState(ix.nextDoc, ix.nextSeg, segs))
	})
	if err != nil {
		return err
	}
	ix.segs = segs
	drop()
	return nil
}

// seqReader reads a segment's postings in order, keeping the block it
// is in.
type seqReader struct {
	ix    *Index
	s     *segment
	off   uint64
	cache map[uint32][]byte
}

func (r *seqReader) next(n uint32) ([]byte, error) {
	if r.cache == nil {
		r.cache = map[uint32][]byte{}
	}
	first, last := uint32(r.off/blockSize), uint32((r.off+uint64(n)-1)/blockSize)
	for i := range r.cache {
		if i < first {
			delete(r.cache, i)
		}
	}
	var out []byte
	var err error
	if _, ok := r.cache[last]; ok {
		out, err = readPostings(nil, r.s, r.cache, r.off, n)
	} else {
		err = r.ix.st.View(func(tx *localstore.Tx) error {
			out, err = readPostings(tx, r.s, r.cache, r.off, n)
			return err
		})
	}
	r.off += uint64(n)
	return out, err
}

// Indexed reports whether the message with this id is indexed.
func (ix *Index) Indexed(id string) bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	_, ok := ix.ids[id]
	return ok
}

// WaitFor waits until cond holds, testing it each time the worker has
// done what it had to do (for tests and benchmarks).
func (ix *Index) WaitFor(ctx context.Context, cond func() bool) error {
	for {
		ix.idleMu.Lock()
		ch := ix.idle
		ix.idleMu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ix.done:
			if cond() {
				return nil
			}
			return errors.New("fulltext: the index is closed")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
