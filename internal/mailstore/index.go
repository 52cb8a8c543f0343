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
	bucketState = "mail-state" // "uidvalidity" -> last UIDVALIDITY handed out; "slot" -> last slot
	// Ordered buckets (localstore.PutSeq), by slot: a per-device number given
	// to a message when it is indexed, so UID order is (nearly) file
	// order and a FETCH over a mailbox reads neighbouring pages.
	bucketMsg  = "mail-index"    // slot -> msgState
	bucketMeta = "mail-metadata" // slot -> Indexer output
)

// mboxState is the per-device state of a mailbox.
type mboxState struct {
	UIDValidity uint32 `json:"v"`
	UIDNext     uint32 `json:"n"`
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
}

type mbox struct {
	name, special string
	subscribed    bool
	state         mboxState
	uids          []uint32 // sorted
	byUID         map[uint32]*msg
}

type msg struct {
	id    string
	mbox  string
	uid   uint32
	slot  uint64
	blob  string
	size  int64
	date  time.Time
	flags []string
}

func (m *msg) state() []byte {
	b, _ := json.Marshal(msgState{ID: m.id, Mbox: m.mbox, UID: m.uid, Blob: m.blob, Size: m.size, Date: m.date, Flags: m.flags})
	return b
}

func (m *msg) message() Message {
	return Message{UID: m.uid, ID: m.id, Flags: slices.Clone(m.flags), Size: m.size, Date: m.date}
}

// loadMailboxDocs gives each mailbox of the index the special use and
// subscription of its document: the index on disk keeps only UIDs, and
// the catch-up after it applies only documents that changed meanwhile.
// Without this, \Sent, \Trash and the others, and every subscription,
// were lost at each restart.
func (s *Store) loadMailboxDocs() error {
	if err := s.docs.IndexTypes(typeMailbox); err != nil {
		return err
	}
	return s.docs.ForEachType(typeMailbox, func(d *docsync.Doc) error {
		var md mailboxDoc
		if json.Unmarshal(d.Body, &md) != nil || validName(md.Name) != nil || d.ID != s.mailboxDocID(md.Name) {
			return nil // not ours to trust; the catch-up judges it too
		}
		s.mu.Lock()
		if mb := s.mboxes[md.Name]; mb != nil {
			mb.special, mb.subscribed = md.Special, md.Subscribed
		}
		s.mu.Unlock()
		return nil
	})
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
			m := &msg{id: ms.ID, mbox: mb.name, uid: ms.UID, slot: slot, blob: ms.Blob, size: ms.Size, date: ms.Date, flags: ms.Flags}
			s.byID[m.id] = m
			mb.byUID[m.uid] = m
			mb.uids = append(mb.uids, m.uid)
			return nil
		})
		if err != nil {
			return err
		}
		for _, mb := range s.mboxes {
			slices.Sort(mb.uids)
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

func (s *Store) indexMailbox(name, special string, subscribed bool) error {
	// Under the lock from the check to the memory update: what is on disk
	// and what sessions see must be the same UIDVALIDITY.
	s.mu.Lock()
	defer s.mu.Unlock()
	if mb, ok := s.mboxes[name]; ok {
		mb.special, mb.subscribed = special, subscribed
		return nil
	}
	var st mboxState
	err := s.st.Update(func(tx *localstore.Tx) error {
		uv, err := nextUIDValidity(tx)
		if err != nil {
			return err
		}
		st = mboxState{UIDValidity: uv, UIDNext: 1}
		b, _ := json.Marshal(st)
		return tx.Put(bucketMbox, name, b)
	})
	if err != nil {
		return fmt.Errorf("mailstore: recording a mailbox in the index: %w", err)
	}
	s.mboxes[name] = &mbox{name: name, special: special, subscribed: subscribed, state: st, byUID: map[uint32]*msg{}}
	s.emitLocked(Event{Kind: EventMailboxes, Mailbox: name})
	return nil
}

func (s *Store) dropMailboxIndex(name string) {
	s.mu.Lock()
	mb := s.mboxes[name]
	var ms []*msg
	if mb != nil {
		for _, u := range mb.uids {
			ms = append(ms, mb.byUID[u])
		}
	}
	s.mu.Unlock()
	for _, m := range ms {
		_ = s.unindex(m)
	}
	_ = s.st.Update(func(tx *localstore.Tx) error { return tx.Delete(bucketMbox, name) })
	s.mu.Lock()
	delete(s.mboxes, name)
	s.mu.Unlock()
	s.emit(Event{Kind: EventMailboxes, Mailbox: name})
}

// dropMailboxIndexIfGone drops a mailbox's index only if its document is
// still deleted when the drop happens: sync runs beside local calls, and
// a mailbox deleted and made again here must keep its new index (and
// UIDVALIDITY) whatever order the sync's notice arrives in.
func (s *Store) dropMailboxIndexIfGone(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock() // deferred: a panic here must not leave the store locked
	_, err := s.docs.Get(s.mailboxDocID(name))
	mb := s.mboxes[name]
	if err == nil || mb == nil {
		return nil
	}
	ms := make([]*msg, 0, len(mb.uids))
	for _, u := range mb.uids {
		ms = append(ms, mb.byUID[u])
	}
	err = s.st.Update(func(tx *localstore.Tx) error {
		for _, m := range ms {
			if err := tx.DeleteSeq(bucketMsg, m.slot); err != nil {
				return err
			}
			if err := tx.DeleteSeq(bucketMeta, m.slot); err != nil {
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

// index assigns a UID in md.Mbox and records the message.
func (s *Store) index(origin any, id string, md messageDoc, meta []byte) (*msg, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.indexLocked(origin, id, md, meta)
}

func (s *Store) indexLocked(origin any, id string, md messageDoc, meta []byte) (*msg, error) {
	mb := s.mboxes[md.Mbox]
	if mb == nil {
		return nil, ErrNoMailbox
	}
	if m, ok := s.byID[id]; ok && m.mbox == md.Mbox {
		return m, nil
	}
	m := &msg{id: id, mbox: mb.name, uid: mb.state.UIDNext, slot: s.lastSlot + 1, blob: md.Blob, size: md.Size, date: md.Date, flags: normFlags(md.Flags)}
	st := mb.state
	st.UIDNext++
	err := s.st.Update(func(tx *localstore.Tx) error {
		b, _ := json.Marshal(st)
		if err := tx.Put(bucketMbox, mb.name, b); err != nil {
			return err
		}
		if err := putMsg(tx, m, meta); err != nil {
			return err
		}
		return putSlot(tx, m.slot)
	})
	if err != nil {
		return nil, fmt.Errorf("mailstore: recording a message in the index: %w", err)
	}
	s.lastSlot = m.slot
	mb.state = st
	mb.byUID[m.uid] = m
	mb.uids = append(mb.uids, m.uid) // UIDs only grow: stays sorted
	s.byID[id] = m
	s.emitLocked(Event{Kind: EventAdded, Mailbox: m.mbox, Message: m.message(), Origin: origin})
	return m, nil
}

// pending is a message of a batch whose document is stored, to index.
type pending struct {
	id   string
	md   messageDoc
	meta []byte
}

// indexBatch assigns UIDs in mbox to the messages todo and records them
// in one transaction. It returns each message's index entry: the new one,
// or the one the sync worker made meanwhile.
func (s *Store) indexBatch(origin any, mbox string, todo []pending) ([]*msg, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb := s.mboxes[mbox]
	if mb == nil {
		return nil, ErrNoMailbox
	}
	st := mb.state
	slot := s.lastSlot
	var added []*msg
	results := make([]*msg, len(todo))
	err := s.st.Update(func(tx *localstore.Tx) error {
		for i, p := range todo {
			if m, ok := s.byID[p.id]; ok {
				results[i] = m // indexed meanwhile (by the sync worker)
				continue
			}
			slot++
			m := &msg{id: p.id, mbox: mbox, uid: st.UIDNext, slot: slot, blob: p.md.Blob, size: p.md.Size, date: p.md.Date, flags: p.md.Flags}
			st.UIDNext++
			if err := putMsg(tx, m, p.meta); err != nil {
				return err
			}
			added = append(added, m)
			results[i] = m
		}
		b, _ := json.Marshal(st)
		if err := tx.Put(bucketMbox, mbox, b); err != nil {
			return err
		}
		return putSlot(tx, slot)
	})
	if err != nil {
		return nil, fmt.Errorf("mailstore: recording messages in the index: %w", err)
	}
	s.lastSlot = slot
	mb.state = st
	for _, m := range added {
		mb.byUID[m.uid] = m
		mb.uids = append(mb.uids, m.uid)
		s.byID[m.id] = m
		s.emitLocked(Event{Kind: EventAdded, Mailbox: mbox, Message: m.message(), Origin: origin})
	}
	return results, nil
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
	if s.byID[m.id] != m {
		return nil
	}
	err := s.st.Update(func(tx *localstore.Tx) error {
		if err := tx.DeleteSeq(bucketMsg, m.slot); err != nil {
			return err
		}
		return tx.DeleteSeq(bucketMeta, m.slot)
	})
	if err != nil {
		return fmt.Errorf("mailstore: removing a message from the index: %w", err)
	}
	delete(s.byID, m.id)
	if mb := s.mboxes[m.mbox]; mb != nil {
		delete(mb.byUID, m.uid)
		if i, ok := slices.BinarySearch(mb.uids, m.uid); ok {
			mb.uids = slices.Delete(mb.uids, i, i+1)
		}
	}
	s.emitLocked(Event{Kind: EventExpunged, Mailbox: m.mbox, Message: m.message(), Origin: origin})
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
	if s.byID[m.id] != m {
		return nil
	}
	ms, _ := json.Marshal(msgState{ID: m.id, Mbox: m.mbox, UID: m.uid, Blob: m.blob, Size: m.size, Date: m.date, Flags: flags})
	if err := s.st.Update(func(tx *localstore.Tx) error { return tx.PutSeq(bucketMsg, m.slot, ms) }); err != nil {
		return fmt.Errorf("mailstore: recording flags in the index: %w", err)
	}
	m.flags = flags
	s.emitLocked(Event{Kind: EventFlags, Mailbox: m.mbox, Message: m.message(), Origin: origin})
	return nil
}

// setFlagsManyLocked records new flags of many messages in one
// transaction, then tells the watchers.
func (s *Store) setFlagsManyLocked(origin any, ms []*msg, flags [][]string) error {
	if len(ms) == 0 {
		return nil
	}
	err := s.st.Update(func(tx *localstore.Tx) error {
		for i, m := range ms {
			v, _ := json.Marshal(msgState{ID: m.id, Mbox: m.mbox, UID: m.uid, Blob: m.blob, Size: m.size, Date: m.date, Flags: flags[i]})
			if err := tx.PutSeq(bucketMsg, m.slot, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mailstore: recording flags in the index: %w", err)
	}
	for i, m := range ms {
		m.flags = flags[i]
		s.emitLocked(Event{Kind: EventFlags, Mailbox: m.mbox, Message: m.message(), Origin: origin})
	}
	return nil
}
