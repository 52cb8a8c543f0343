package mailstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/recovered"
)

// The worker applies the listed changes drainBatch at a time, and takes
// those of a batch that applied in one transaction.
const (
	drainBatch = 1000
	retryFirst = time.Minute // a change that failed to apply waits this long,
	retryMax   = time.Hour   // doubling up to this
	// lazyWait is how long the worker, idle, lets the index's lazy
	// writes (the changes it took, \Recent floors) wait for another
	// transaction to carry them before it writes them itself.
	lazyWait = 100 * time.Millisecond
)

// retry is when a change that failed to apply is tried again.
type retry struct {
	at   time.Time
	wait time.Duration
	// broken is the stamp of a change whose application panicked: set
	// aside, it is not tried again in this run unless a newer change of
	// the document comes (it stays listed: the next start tries it once,
	// and a newer bitmaskd may apply it).
	broken uint64
	isSet  bool // broken is set
}

// due says whether change c is to be applied now.
func (r *retry) due(c docsync.Change, now time.Time) bool {
	if r.isSet {
		return r.broken != c.Stamp
	}
	return !now.Before(r.at)
}

// worker applies what docsync lists when poked (by a write or a pull)
// and every retryFirst (for the changes that wait), until Close.
func (s *Store) worker() {
	defer s.wg.Done()
	tick := time.NewTicker(retryFirst)
	defer tick.Stop()
	flush := time.NewTimer(lazyWait)
	flush.Stop()
	armed := false
	for {
		select {
		case <-s.closed:
			return
		case <-s.kick:
		case <-tick.C:
			s.purgeExpunged()
		case <-flush.C:
			armed = false
			s.flushLazy()
			continue
		}
		// A panic in one change is handled in applyBroken; one outside
		// them (reading the list, recording what was taken) ends this
		// round only, the next kick or tick tries again.
		if p := recovered.Do(func() { s.drainLazily(s.ctx) }); p != nil {
			s.log.Error("mailstore: applying changes panicked", p.LogAttrs()...)
		}
		// What the drain took (and \Recent floors raised meanwhile)
		// rides with the next write of the index, or waits lazyWait.
		s.mu.Lock()
		waiting := !s.lazy.empty()
		s.mu.Unlock()
		if waiting && !armed {
			flush.Reset(lazyWait)
			armed = true
		}
	}
}

// poke asks the worker to apply what docsync lists. Every write method
// pokes when it returns: its own documents are listed too, and the
// worker (finding them indexed as they are) takes them from the list.
func (s *Store) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// drain applies the listed changes until none is left (or none of those
// left can be applied now: they wait, retryFirst and then longer, or for
// the next start), and takes them.
func (s *Store) drain(ctx context.Context) {
	s.drainLazily(ctx)
	s.flushLazy()
}

// drainLazily is drain, leaving the taking of the changes it applied to
// the index's next transaction (s.lazy): a client's APPEND is listed
// too, and taking it in a transaction of its own would cost each APPEND
// a second one.
func (s *Store) drainLazily(ctx context.Context) {
	s.drainMu.Lock()
	defer s.drainMu.Unlock()
	if s.retryNow.Swap(false) {
		now := time.Now()
		for _, r := range s.failed {
			r.at = now // try now; a failure again waits longer (set-aside ones wait still)
		}
	}
	for {
		all, err := s.docs.Changed(0)
		if err != nil {
			s.log.Warn("mailstore: reading the list of changes", "err", err)
			return
		}
		now := time.Now()
		var todo []docsync.Change
		s.mu.Lock()
		for _, c := range all {
			if stamp, ok := s.lazy.takes[c.ID]; ok && stamp >= c.Stamp {
				continue // applied; its taking waits
			}
			if r, ok := s.failed[c.ID]; !ok || r.due(c, now) {
				todo = append(todo, c)
			}
		}
		s.mu.Unlock()
		if len(todo) == 0 {
			return
		}
		progress := false
		for len(todo) > 0 {
			batch := todo[:min(drainBatch, len(todo))]
			todo = todo[len(batch):]
			if s.applyChanges(ctx, batch) > 0 {
				progress = true
			}
			if ctx.Err() != nil {
				return
			}
		}
		if !progress {
			return
		}
	}
}

// applyChanges applies changes and takes those that applied; it returns
// how many did.
func (s *Store) applyChanges(ctx context.Context, changes []docsync.Change) int {
	ids := make([]string, len(changes))
	for i, c := range changes {
		ids[i] = c.ID
	}
	failed, broken := s.applyBroken(ctx, ids)
	done := make([]docsync.Change, 0, len(changes))
	now := time.Now()
	for _, c := range changes {
		if broken[c.ID] {
			s.failed[c.ID] = &retry{broken: c.Stamp, isSet: true}
			continue
		}
		if failed[c.ID] && ctx.Err() != nil {
			continue // stopping, not failing: left listed, no wait
		}
		if failed[c.ID] {
			r := s.failed[c.ID]
			if r == nil {
				r = &retry{wait: retryFirst / 2}
				s.failed[c.ID] = r
			}
			r.wait = min(2*r.wait, retryMax)
			r.at = now.Add(r.wait)
			continue
		}
		delete(s.failed, c.ID)
		done = append(done, c)
	}
	s.mu.Lock()
	for _, c := range done {
		s.lazy.takes[c.ID] = max(s.lazy.takes[c.ID], c.Stamp)
	}
	s.mu.Unlock()
	return len(done)
}

// apply brings the index in line with the documents ids, as they are
// now; it returns the ids it could not apply.
func (s *Store) apply(ctx context.Context, ids []string) map[string]bool {
	failed, _ := s.applyBroken(ctx, ids)
	return failed
}

// applyBroken is apply, which also returns the ids whose application
// panicked (among the failed ones). Such a panic is logged (what and
// where, not the document) and does not stop the others.
func (s *Store) applyBroken(ctx context.Context, ids []string) (failed, broken map[string]bool) {
	failed, broken = map[string]bool{}, map[string]bool{}
	guard := func(id string, f func()) {
		if p := recovered.Do(f); p != nil {
			s.log.Error("mailstore: applying a change panicked; set aside", append([]any{"doc", id}, p.LogAttrs()...)...)
			failed[id], broken[id] = true, true
		}
	}
	// Mailboxes first, so messages find theirs.
	var msgs []string
	for _, id := range ids {
		if ctx.Err() != nil {
			failed[id] = true // stopping: left listed
			continue
		}
		guard(id, func() {
			if s.applyOne(id, &msgs) != nil {
				failed[id] = true
			}
		})
	}
	for _, id := range msgs {
		if ctx.Err() != nil {
			failed[id] = true
			continue
		}
		guard(id, func() {
			if err := s.applyMessage(ctx, id); err != nil {
				s.log.Warn("mailstore: indexing a message", "err", err)
				failed[id] = true
			}
		})
	}
	return failed, broken
}

// testHookApplyMessage, set only by tests, runs as a message document
// starts being applied (a test makes it panic for one document).
var testHookApplyMessage func(id string)

// errFailed is applyOne's "not applied" (already logged).
var errFailed = errors.New("mailstore: not applied")

// applyOne applies a document that is gone or a mailbox, and adds a
// message to msgs (applied after the mailboxes).
func (s *Store) applyOne(id string, msgs *[]string) error {
	d, err := s.docs.Get(id)
	if errors.Is(err, docsync.ErrNotFound) {
		if err := s.applyGone(id); err != nil {
			s.log.Warn("mailstore: unindexing", "err", err)
			return errFailed
		}
		return nil
	}
	if err != nil {
		s.log.Warn("mailstore: reading a document", "err", err)
		return errFailed
	}
	var head struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(d.Body, &head) != nil {
		return nil
	}
	switch head.Type {
	case typeMailbox:
		var md mailboxDoc
		if json.Unmarshal(d.Body, &md) == nil && validName(md.Name) == nil && id == s.mailboxDocID(md.Name) {
			if err := s.applyMailbox(md); err != nil {
				s.log.Warn("mailstore: indexing a mailbox", "err", err)
				return errFailed
			}
		}
	case typeMessage:
		*msgs = append(*msgs, id)
	case typeSubscriptions:
		if id == s.subscriptionsDocID() {
			s.applySubscriptions(d.Body)
		}
	}
	return nil
}

func (s *Store) applyGone(id string) error {
	if id == s.subscriptionsDocID() {
		s.applySubscriptions(nil)
		return nil
	}
	s.mu.Lock()
	if m, ok := s.byID[id]; ok {
		s.mu.Unlock()
		return s.unindex(m)
	}
	var gone *mbox
	for _, mb := range s.mboxes {
		if s.mailboxDocID(mb.name) == id {
			gone = mb
		}
	}
	s.mu.Unlock()
	if gone != nil {
		return s.dropMailboxIndexIfGone(gone.name)
	}
	return nil
}

func (s *Store) applyMailbox(md mailboxDoc) error {
	s.mu.Lock()
	mb, ok := s.mboxes[md.Name]
	if ok {
		changed := mb.special != md.Special
		mb.special = md.Special
		s.mu.Unlock()
		if changed {
			s.emit(Event{Kind: EventMailboxes, Mailbox: md.Name})
		}
		return nil
	}
	s.mu.Unlock()
	return s.indexMailbox(md.Name, md.Special)
}

// applyMessage indexes a message document that is new, moved or whose
// flags changed. The slow part (fetching and indexing the content of a
// new message) runs unlocked; the index is changed under s.mu and only if
// the document is still the one read: if a local write or another pull
// changed it meanwhile, that newer change is listed and applied next, and
// this older one must not undo it.
func (s *Store) applyMessage(ctx context.Context, id string) error {
	if testHookApplyMessage != nil {
		testHookApplyMessage(id)
	}
	d, err := s.docs.Get(id)
	if err != nil {
		if errors.Is(err, docsync.ErrNotFound) {
			return s.applyGone(id)
		}
		return fmt.Errorf("mailstore: reading a message's document: %w", err)
	}
	var md messageDoc
	if err := json.Unmarshal(d.Body, &md); err != nil {
		return fmt.Errorf("mailstore: decoding a message's document: %w", err)
	}
	md.Flags = normFlags(md.Flags)
	s.mu.Lock()
	cur := s.byID[id]
	_, mboxKnown := s.mboxes[md.Mbox]
	s.mu.Unlock()
	if !mboxKnown {
		// A message for a mailbox we do not know (its document is still
		// on its way, or it was deleted): make the mailbox.
		if err := s.indexMailbox(md.Mbox, ""); err != nil {
			return err
		}
	}
	var meta []byte
	if cur == nil {
		raw, err := s.docs.Blob(ctx, md.Blob)
		if err != nil {
			return fmt.Errorf("mailstore: fetching a message's content: %w", err)
		}
		meta = s.metaFor(raw)
	}
	return s.applyMessageLocked(id, d.Body, md, meta)
}

// applyMessageLocked is applyMessage's second half, under s.mu: it
// indexes md (read from the document's body, with the new message's
// metadata meta) unless the document changed since it was read.
func (s *Store) applyMessageLocked(id string, body []byte, md messageDoc, meta []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now, err := s.docs.Get(id)
	if errors.Is(err, docsync.ErrNotFound) || err == nil && !bytes.Equal(now.Body, body) {
		return nil // changed meanwhile: the newer change is listed
	}
	if err != nil {
		return fmt.Errorf("mailstore: reading a message's document again: %w", err)
	}
	cur := s.byID[id]
	switch {
	case cur != nil && cur.mbox == md.Mbox:
		if slices.Equal(cur.flags, md.Flags) {
			return nil
		}
		return s.setFlagsLocked(nil, cur, md.Flags)
	case cur != nil:
		// Moved: the content is the same, and so is its metadata.
		if meta == nil {
			meta, _ = s.metaOf(cur)
		}
		if err := s.unindexLocked(nil, cur); err != nil {
			return err
		}
	}
	_, err = s.indexLocked(nil, id, md, meta)
	return err
}
