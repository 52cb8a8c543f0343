package mailstore

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/localstore"
)

const (
	bucketMbox  = "mail-mbox"  // name -> mboxState
	bucketState = "mail-state" // "uidvalidity" -> last UIDVALIDITY handed out; "slot" -> last slot; "modseq" -> last MODSEQ
	// Ordered buckets (localstore.PutSeq), by slot: a per-device number given
	// to a message when it is indexed, so UID order is (nearly) file
	// order and a FETCH over a mailbox reads neighbouring pages.
	bucketMsg  = "mail-index"    // slot -> msgState
	bucketMeta = "mail-metadata" // slot -> Indexer output
	// Ordered by MODSEQ: the UIDs expunged, each under the MODSEQ its
	// expunge got (QRESYNC's VANISHED (EARLIER)).
	bucketVanished = "mail-vanished" // modseq -> vanishedState
)

// vanishedState is an expunged UID, under the MODSEQ of its expunge.
type vanishedState struct {
	Mbox        string `json:"m"`
	UIDValidity uint32 `json:"v"`
	UID         uint32 `json:"u"`
}

// A mailbox's log of expunged UIDs keeps at most vanishedMax of them:
// beyond, the oldest are dropped, vanishedDrop at a time, and the
// mailbox's VanishedFloor says below which MODSEQ the log is incomplete.
// (Variables for the tests.)
var (
	vanishedMax  = 50000
	vanishedDrop = 10000
)

// vanished is a UID expunged at modseq.
type vanished struct {
	modseq uint64
	uid    uint32
}

// mboxState is the per-device state of a mailbox.
type mboxState struct {
	UIDValidity uint32 `json:"v"`
	UIDNext     uint32 `json:"n"`
	// HighestModSeq is the MODSEQ of the mailbox's last change (0 in an
	// index from before MODSEQs: read as 1).
	HighestModSeq uint64 `json:"h,omitempty"`
	// Recent is the \Recent floor: the highest UID a session has
	// claimed as \Recent (ClaimRecent, RaiseRecent).
	Recent uint32 `json:"r,omitempty"`
	// VanishedFloor is the MODSEQ up to which the log of expunged UIDs
	// was dropped (see vanishedMax).
	VanishedFloor uint64 `json:"vf,omitempty"`
}

// msgState is the per-device index entry of a message.
type msgState struct {
	ID    string    `json:"i"`
	Mbox  string    `json:"m"`
	UID   uint32    `json:"u"`
	Blob  string    `json:"b"`
	Size  int64     `json:"s"`
	Date  time.Time `json:"d"`
	Flags []string  `json:"f,omitempty"`
	// ModSeq is the MODSEQ of the message's last change (0 in an index
	// from before MODSEQs: read as 1).
	ModSeq uint64 `json:"q,omitempty"`
}

type mbox struct {
	name, special string
	state         mboxState
	uids          []uint32 // sorted
	byUID         map[uint32]*msg
	unseen        int        // messages without \Seen, kept as they change
	vanished      []vanished // expunged UIDs, by MODSEQ
}

type msg struct {
	id     string
	mbox   string
	uid    uint32
	slot   uint64
	blob   string
	size   int64
	date   time.Time
	flags  []string
	modseq uint64
}

func (m *msg) state() []byte {
	return m.stateWith(m.flags, m.modseq)
}

// stateWith is the index entry of m with other flags and MODSEQ.
func (m *msg) stateWith(flags []string, modseq uint64) []byte {
	b, _ := json.Marshal(msgState{ID: m.id, Mbox: m.mbox, UID: m.uid, Blob: m.blob, Size: m.size, Date: m.date, Flags: flags, ModSeq: modseq})
	return b
}

func (m *msg) message() Message {
	return Message{UID: m.uid, ID: m.id, Flags: slices.Clone(m.flags), Size: m.size, Date: m.date, ModSeq: m.modseq}
}

func seen(flags []string) bool { return slices.Contains(flags, `\Seen`) }

// unseenDelta is how the unseen count changes when flags become nf.
func unseenDelta(old, nf []string) int {
	switch {
	case seen(old) && !seen(nf):
		return 1
	case !seen(old) && seen(nf):
		return -1
	}
	return 0
}

// loadMailboxDocs gives each mailbox of the index the special use of its
// document: the index on disk keeps only UIDs, and the catch-up after it
// applies only documents that changed meanwhile. Without this, \Sent,
// \Trash and the others were lost at each restart. It returns the names
// the documents say are subscribed (as kept before the subscriptions
// document: loadSubscriptions carries them over once).
func (s *Store) loadMailboxDocs() (subscribed []string, err error) {
	if err := s.docs.IndexTypes(typeMailbox); err != nil {
		return nil, err
	}
	err = s.docs.ForEachType(typeMailbox, func(d *docsync.Doc) error {
		var md mailboxDoc
		if json.Unmarshal(d.Body, &md) != nil || validName(md.Name) != nil || d.ID != s.mailboxDocID(md.Name) {
			return nil // not ours to trust; the catch-up judges it too
		}
		if md.Subscribed {
			subscribed = append(subscribed, md.Name)
		}
		s.mu.Lock()
		if mb := s.mboxes[md.Name]; mb != nil {
			mb.special = md.Special
		}
		s.mu.Unlock()
		return nil
	})
	return subscribed, err
}

// load reads the per-device index into memory.
func (s *Store) load() error {
	return s.st.View(func(tx *localstore.Tx) error {
		err := tx.ForEach(bucketMbox, func(name string, v []byte) error {
			var st mboxState
			if err := json.Unmarshal(v, &st); err != nil {
				return fmt.Errorf("mailstore: index of %q: %w", name, err)
			}
			s.mboxes[name] = &mbox{name: name, state: st, byUID: map[uint32]*msg{}}
			return nil
		})
		if err != nil {
			return err
		}
		if v, err := tx.Get(bucketState, "slot"); err == nil && len(v) == 8 {
			s.lastSlot = binary.BigEndian.Uint64(v)
		}
		if v, err := tx.Get(bucketState, keyModSeq); err == nil && len(v) == 8 {
			s.lastModSeq = binary.BigEndian.Uint64(v)
		}
		err = tx.ForEachSeq(bucketMsg, func(slot uint64, v []byte) error {
			var ms msgState
			if err := json.Unmarshal(v, &ms); err != nil {
				return fmt.Errorf("mailstore: index of message: %w", err)
			}
			s.lastSlot = max(s.lastSlot, slot)
			mb := s.mboxes[ms.Mbox]
			if mb == nil || s.byID[ms.ID] != nil {
				return nil // applied by catchUp
			}
			m := &msg{id: ms.ID, mbox: mb.name, uid: ms.UID, slot: slot, blob: ms.Blob, size: ms.Size, date: ms.Date, flags: ms.Flags, modseq: max(ms.ModSeq, 1)}
			s.byID[m.id] = m
			mb.byUID[m.uid] = m
			mb.uids = append(mb.uids, m.uid)
			if !seen(m.flags) {
				mb.unseen++
			}
			s.lastModSeq = max(s.lastModSeq, m.modseq)
			mb.state.HighestModSeq = max(mb.state.HighestModSeq, m.modseq)
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.ForEachSeq(bucketVanished, func(modseq uint64, v []byte) error {
			var vs vanishedState
			if json.Unmarshal(v, &vs) != nil {
				return nil // the log is a help, not the truth: a bad entry is skipped
			}
			s.lastModSeq = max(s.lastModSeq, modseq)
			if mb := s.mboxes[vs.Mbox]; mb != nil && mb.state.UIDValidity == vs.UIDValidity && modseq > mb.state.VanishedFloor {
				mb.vanished = append(mb.vanished, vanished{modseq, vs.UID})
			}
			return nil
		})
		if err != nil {
			return err
		}
		s.lastModSeq = max(s.lastModSeq, 1)
		for _, mb := range s.mboxes {
			slices.Sort(mb.uids)
			mb.state.HighestModSeq = max(mb.state.HighestModSeq, 1)
			s.lastModSeq = max(s.lastModSeq, mb.state.HighestModSeq)
		}
		return nil
	})
}

// nextUIDValidity hands out a UIDVALIDITY from the clock, never reused.
func nextUIDValidity(tx *localstore.Tx) (uint32, error) {
	var last uint32
	if v, err := tx.Get(bucketState, "uidvalidity"); err == nil && len(v) == 4 {
		last = binary.BigEndian.Uint32(v)
	} else if err != nil && !errors.Is(err, localstore.ErrNotFound) {
		return 0, err
	}
	uv := max(uint32(time.Now().Unix()), last+1)
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uv)
	return uv, tx.Put(bucketState, "uidvalidity", b[:])
}

// keyModSeq, in bucketState, is the last MODSEQ handed out. MODSEQs come
// from one counter for the whole store: each mailbox's then only grow,
// and an expunge's MODSEQ is the key of its entry in bucketVanished.
const keyModSeq = "modseq"

// lazy is what the index may write later: with the next transaction of
// the index, or when the worker is idle (flushLazy), or at Close. A crash
// before then loses nothing that matters: a change applied but not taken
// stays listed and is applied again (a no-op), and a \Recent floor not
// raised on disk makes those messages \Recent once more, which RFC 3501
// §2.3.2 prefers to losing them.
type lazy struct {
	mboxes map[string]bool   // mailboxes whose \Recent floor moved
	takes  map[string]uint64 // changes applied, to take (docsync.Taken): id -> stamp
}

func (l *lazy) empty() bool { return len(l.mboxes) == 0 && len(l.takes) == 0 }

// commitLocked runs fn in a transaction of the local store, with what
// waits in s.lazy before it; the caller holds s.mu.
func (s *Store) commitLocked(fn func(tx *localstore.Tx) error) error {
	err := s.st.Update(func(tx *localstore.Tx) error {
		for name := range s.lazy.mboxes {
			if mb := s.mboxes[name]; mb != nil {
				if err := putMbox(tx, name, mb.state); err != nil {
					return err
				}
			}
		}
		if len(s.lazy.takes) > 0 {
			changes := make([]docsync.Change, 0, len(s.lazy.takes))
			for id, stamp := range s.lazy.takes {
				changes = append(changes, docsync.Change{ID: id, Stamp: stamp})
			}
			if err := docsync.Taken(tx, changes...); err != nil {
				return err
			}
		}
		return fn(tx)
	})
	if err == nil {
		clear(s.lazy.mboxes)
		clear(s.lazy.takes)
	}
	return err
}

// flushLazy writes what waits in s.lazy.
func (s *Store) flushLazy() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lazy.empty() {
		return
	}
	if err := s.commitLocked(func(*localstore.Tx) error { return nil }); err != nil {
		s.log.Warn("mailstore: recording applied changes", "err", err)
	}
}

func putMbox(tx *localstore.Tx, name string, st mboxState) error {
	b, _ := json.Marshal(st)
	return tx.Put(bucketMbox, name, b)
}

// putModSeq records the last MODSEQ handed out.
func putModSeq(tx *localstore.Tx, modseq uint64) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], modseq)
	return tx.Put(bucketState, keyModSeq, b[:])
}

func (s *Store) indexMailbox(name, special string) error {
	// Under the lock from the check to the memory update: what is on disk
	// and what sessions see must be the same UIDVALIDITY.
	s.mu.Lock()
	defer s.mu.Unlock()
	if mb, ok := s.mboxes[name]; ok {
		mb.special = special
		return nil
	}
	var st mboxState
	err := s.commitLocked(func(tx *localstore.Tx) error {
		uv, err := nextUIDValidity(tx)
		if err != nil {
			return err
		}
		st = mboxState{UIDValidity: uv, UIDNext: 1, HighestModSeq: s.lastModSeq}
		return putMbox(tx, name, st)
	})
	if err != nil {
		return fmt.Errorf("mailstore: recording a mailbox in the index: %w", err)
	}
	s.mboxes[name] = &mbox{name: name, special: special, state: st, byUID: map[uint32]*msg{}}
	s.emitLocked(Event{Kind: EventMailboxes, Mailbox: name})
	return nil
}

func (s *Store) dropMailboxIndex(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropMailboxIndexLocked(name)
}

// dropMailboxIndexIfGone drops a mailbox's index only if its document is
// still deleted when the drop happens: sync runs beside local calls, and
// a mailbox deleted and made again here must keep its new index (and
// UIDVALIDITY) whatever order the sync's notice arrives in.
func (s *Store) dropMailboxIndexIfGone(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock() // deferred: a panic here must not leave the store locked
	if _, err := s.docs.Get(s.mailboxDocID(name)); err == nil {
		return nil
	}
	return s.dropMailboxIndexLocked(name)
}

// dropMailboxIndexLocked removes a mailbox and its messages from the
// index, in one transaction.
func (s *Store) dropMailboxIndexLocked(name string) error {
	mb := s.mboxes[name]
	if mb == nil {
		return nil
	}
	ms := make([]*msg, 0, len(mb.uids))
	for _, u := range mb.uids {
		ms = append(ms, mb.byUID[u])
	}
	err := s.commitLocked(func(tx *localstore.Tx) error {
		for _, m := range ms {
			if err := tx.DeleteSeq(bucketMsg, m.slot); err != nil {
				return err
			}
			if err := tx.DeleteSeq(bucketMeta, m.slot); err != nil {
				return err
			}
		}
		for _, v := range mb.vanished {
			if err := tx.DeleteSeq(bucketVanished, v.modseq); err != nil {
				return err
			}
		}
		return tx.Delete(bucketMbox, name)
	})
	if err != nil {
		return fmt.Errorf("mailstore: dropping a mailbox's index: %w", err)
	}
	for _, m := range ms {
		delete(s.byID, m.id)
		s.emitLocked(Event{Kind: EventExpunged, Mailbox: name, Message: m.message()})
	}
	delete(s.mboxes, name)
	s.emitLocked(Event{Kind: EventMailboxes, Mailbox: name})
	return nil
}

// pending is a message whose document is stored, to index.
type pending struct {
	origin any
	id     string
	md     messageDoc
	meta   []byte
	// The message's blob and document, when they are committed with
	// its index entry (an APPEND); the caller calls stage.Committed.
	stage *docsync.Staged

	// Set by addLocked.
	done bool
	m    *msg // the message's entry: new, or the one it had
	err  error
}

// indexLocked assigns a UID in md.Mbox and records the message.
func (s *Store) indexLocked(origin any, id string, md messageDoc, meta []byte) (*msg, error) {
	p := &pending{origin: origin, id: id, md: md, meta: meta}
	s.addLocked([]*pending{p})
	return p.m, p.err
}

// indexQueued indexes one message, in a transaction shared with the
// messages that other callers queued meanwhile (group commit): while one
// caller writes, the others queue, and the next one to get the lock
// writes all that queued.
func (s *Store) indexQueued(p *pending) (*msg, error) {
	s.qmu.Lock()
	s.queue = append(s.queue, p)
	s.qmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !p.done {
		s.qmu.Lock()
		batch := s.queue
		s.queue = nil
		s.qmu.Unlock()
		s.addLocked(batch)
	}
	return p.m, p.err
}

// addLocked assigns UIDs, slots and MODSEQs to the messages todo and
// records them in one transaction, then tells the watchers. Each gets its
// entry (or, for a message indexed already, the one it has) or an error.
func (s *Store) addLocked(todo []*pending) {
	states := map[string]*mboxState{}
	fresh := map[string]*msg{}
	slot, modseq := s.lastSlot, s.lastModSeq
	var added []*pending
	for _, p := range todo {
		p.done = true
		mb := s.mboxes[p.md.Mbox]
		if mb == nil {
			p.err = ErrNoMailbox
			continue
		}
		if m, ok := s.byID[p.id]; ok {
			p.m = m // indexed meanwhile (by the sync worker)
			continue
		}
		if m, ok := fresh[p.id]; ok {
			p.m = m
			continue
		}
		st := states[mb.name]
		if st == nil {
			c := mb.state
			st = &c
			states[mb.name] = st
		}
		slot++
		modseq++
		p.m = &msg{id: p.id, mbox: mb.name, uid: st.UIDNext, slot: slot, blob: p.md.Blob, size: p.md.Size, date: p.md.Date, flags: normFlags(p.md.Flags), modseq: modseq}
		st.UIDNext++
		st.HighestModSeq = modseq
		fresh[p.id] = p.m
		added = append(added, p)
	}
	if len(added) == 0 {
		return
	}
	err := s.commitLocked(func(tx *localstore.Tx) error {
		for name, st := range states {
			if err := putMbox(tx, name, *st); err != nil {
				return err
			}
		}
		for _, p := range added {
			if p.stage != nil {
				if err := p.stage.WriteApplied(tx); err != nil {
					return err
				}
			}
			if err := putMsg(tx, p.m, p.meta); err != nil {
				return err
			}
		}
		if err := putSlot(tx, slot); err != nil {
			return err
		}
		return putModSeq(tx, modseq)
	})
	if err != nil {
		err = fmt.Errorf("mailstore: recording messages in the index: %w", err)
		for _, p := range todo {
			if _, ok := fresh[p.id]; ok {
				p.m, p.err = nil, err
			}
		}
		return
	}
	s.lastSlot, s.lastModSeq = slot, modseq
	for name, st := range states {
		s.mboxes[name].state = *st
	}
	for _, p := range added {
		m := p.m
		mb := s.mboxes[m.mbox]
		mb.byUID[m.uid] = m
		mb.uids = append(mb.uids, m.uid) // UIDs only grow: stays sorted
		if !seen(m.flags) {
			mb.unseen++
		}
		s.byID[m.id] = m
		s.emitLocked(Event{Kind: EventAdded, Mailbox: m.mbox, Message: m.message(), ModSeq: m.modseq, Origin: p.origin})
	}
}

// putMsg writes a message's index entry and metadata under its slot.
func putMsg(tx *localstore.Tx, m *msg, meta []byte) error {
	if err := tx.PutSeq(bucketMsg, m.slot, m.state()); err != nil {
		return err
	}
	if meta != nil {
		return tx.PutSeq(bucketMeta, m.slot, meta)
	}
	return nil
}

// putSlot records the last slot handed out.
func putSlot(tx *localstore.Tx, slot uint64) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], slot)
	return tx.Put(bucketState, "slot", b[:])
}

// metaOf reads a message's metadata; the caller holds s.mu.
func (s *Store) metaOf(m *msg) ([]byte, error) {
	var meta []byte
	err := s.st.View(func(tx *localstore.Tx) error {
		v, err := tx.GetSeq(bucketMeta, m.slot)
		meta = v
		return err
	})
	return meta, err
}

func (s *Store) unindex(m *msg) error {
	return s.unindexOrigin(nil, m)
}

// unindexOrigin removes a message from the index: on disk and in memory
// under one hold of s.mu, so no flag update can write its entry back in
// between.
func (s *Store) unindexOrigin(origin any, m *msg) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unindexLocked(origin, m)
}

func (s *Store) unindexLocked(origin any, m *msg) error {
	return s.unindexManyLocked(origin, []*msg{m})
}

// unindexManyLocked removes messages from the index in one transaction
// (those that left it meanwhile are skipped), each expunge with its
// MODSEQ, which becomes its mailbox's HIGHESTMODSEQ and the key of the
// UID in the log of expunged UIDs.
func (s *Store) unindexManyLocked(origin any, ms []*msg) error {
	type gone struct {
		m      *msg
		modseq uint64
	}
	var out []gone
	states := map[string]*mboxState{}
	modseq := s.lastModSeq
	taken := map[*msg]bool{}
	for _, m := range ms {
		if s.byID[m.id] != m || taken[m] {
			continue
		}
		taken[m] = true
		modseq++
		out = append(out, gone{m, modseq})
		if mb := s.mboxes[m.mbox]; mb != nil {
			st := states[mb.name]
			if st == nil {
				c := mb.state
				st = &c
				states[mb.name] = st
			}
			st.HighestModSeq = modseq
		}
	}
	if len(out) == 0 {
		return nil
	}
	// The oldest of a log grown too long are dropped.
	added := map[string]int{}
	for _, g := range out {
		added[g.m.mbox]++
	}
	prune := map[string]int{}
	for name, st := range states {
		mb := s.mboxes[name]
		if total := len(mb.vanished) + added[name]; total > vanishedMax {
			n := min(len(mb.vanished), total-(vanishedMax-vanishedDrop))
			if n > 0 {
				prune[name] = n
				st.VanishedFloor = mb.vanished[n-1].modseq
			}
		}
	}
	err := s.commitLocked(func(tx *localstore.Tx) error {
		for name, n := range prune {
			for _, v := range s.mboxes[name].vanished[:n] {
				if err := tx.DeleteSeq(bucketVanished, v.modseq); err != nil {
					return err
				}
			}
		}
		for _, g := range out {
			if err := tx.DeleteSeq(bucketMsg, g.m.slot); err != nil {
				return err
			}
			if err := tx.DeleteSeq(bucketMeta, g.m.slot); err != nil {
				return err
			}
			if st := states[g.m.mbox]; st != nil {
				v, _ := json.Marshal(vanishedState{Mbox: g.m.mbox, UIDValidity: st.UIDValidity, UID: g.m.uid})
				if err := tx.PutSeq(bucketVanished, g.modseq, v); err != nil {
					return err
				}
			}
		}
		for name, st := range states {
			if err := putMbox(tx, name, *st); err != nil {
				return err
			}
		}
		return putModSeq(tx, modseq)
	})
	if err != nil {
		return fmt.Errorf("mailstore: removing messages from the index: %w", err)
	}
	s.lastModSeq = modseq
	for name, n := range prune {
		mb := s.mboxes[name]
		mb.vanished = slices.Clone(mb.vanished[n:])
	}
	now := time.Now()
	dropped := map[string]map[uint32]bool{}
	for _, g := range out {
		m := g.m
		delete(s.byID, m.id)
		s.keepExpungedLocked(m, now)
		if mb := s.mboxes[m.mbox]; mb != nil {
			delete(mb.byUID, m.uid)
			if !seen(m.flags) {
				mb.unseen--
			}
			mb.vanished = append(mb.vanished, vanished{g.modseq, m.uid})
			if dropped[mb.name] == nil {
				dropped[mb.name] = map[uint32]bool{}
			}
			dropped[mb.name][m.uid] = true
		}
	}
	s.purgeExpungedLocked(now)
	for name, uids := range dropped {
		mb := s.mboxes[name]
		mb.state = *states[name]
		if len(uids) == 1 {
			for u := range uids {
				if i, ok := slices.BinarySearch(mb.uids, u); ok {
					mb.uids = slices.Delete(mb.uids, i, i+1)
				}
			}
		} else {
			mb.uids = slices.DeleteFunc(mb.uids, func(u uint32) bool { return uids[u] })
		}
	}
	for _, g := range out {
		s.emitLocked(Event{Kind: EventExpunged, Mailbox: g.m.mbox, Message: g.m.message(), ModSeq: g.modseq, Origin: origin})
	}
	return nil
}

func (s *Store) setFlagsIndex(origin any, m *msg, flags []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setFlagsLocked(origin, m, flags)
}

// setFlagsLocked records a message's new flags, unless it left the
// index meanwhile (then its entry must stay gone).
func (s *Store) setFlagsLocked(origin any, m *msg, flags []string) error {
	return s.setFlagsManyLocked(origin, []*msg{m}, [][]string{flags})
}

// setFlagsManyLocked records new flags of many messages in one
// transaction, each with a new MODSEQ, then tells the watchers. Messages
// that left the index meanwhile, or whose flags are already these, are
// skipped (a change to nothing gets no MODSEQ).
func (s *Store) setFlagsManyLocked(origin any, ms []*msg, flags [][]string) error {
	type change struct {
		m      *msg
		flags  []string
		modseq uint64
	}
	var out []change
	states := map[string]*mboxState{}
	modseq := s.lastModSeq
	for i, m := range ms {
		if s.byID[m.id] != m || slices.Equal(m.flags, flags[i]) {
			continue
		}
		mb := s.mboxes[m.mbox]
		if mb == nil {
			continue
		}
		modseq++
		out = append(out, change{m, flags[i], modseq})
		st := states[mb.name]
		if st == nil {
			c := mb.state
			st = &c
			states[mb.name] = st
		}
		st.HighestModSeq = modseq
	}
	if len(out) == 0 {
		return nil
	}
	err := s.commitLocked(func(tx *localstore.Tx) error {
		for _, c := range out {
			if err := tx.PutSeq(bucketMsg, c.m.slot, c.m.stateWith(c.flags, c.modseq)); err != nil {
				return err
			}
		}
		for name, st := range states {
			if err := putMbox(tx, name, *st); err != nil {
				return err
			}
		}
		return putModSeq(tx, modseq)
	})
	if err != nil {
		return fmt.Errorf("mailstore: recording flags in the index: %w", err)
	}
	s.lastModSeq = modseq
	for name, st := range states {
		s.mboxes[name].state = *st
	}
	for _, c := range out {
		s.mboxes[c.m.mbox].unseen += unseenDelta(c.m.flags, c.flags)
		c.m.flags, c.m.modseq = c.flags, c.modseq
		s.emitLocked(Event{Kind: EventFlags, Mailbox: c.m.mbox, Message: c.m.message(), ModSeq: c.modseq, Origin: origin})
	}
	return nil
}
