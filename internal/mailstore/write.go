package mailstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/pkg/seal"
)

// MaxMessageSize is the largest message the store takes: the 64 MiB that
// the provider's MX and the local SMTP accept, and 1 MiB for the fields
// the provider and bitmaskd add on the way (trace, authentication and
// status fields), so that nothing accepted with 250 is too big to keep.
const MaxMessageSize = 64<<20 + 1<<20

// FlagOp says how StoreFlags changes flags.
type FlagOp int

// Flag operations.
const (
	FlagsSet FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// CreateMailbox makes a mailbox (and its parents, as IMAP allows), and
// subscribes the names it makes.
func (s *Store) CreateMailbox(ctx context.Context, name string) error {
	defer s.poke()
	return s.createTree(ctx, NormalizeName(name), true)
}

// createTree makes a mailbox and the parents it lacks; subscribe
// subscribes those it makes.
func (s *Store) createTree(ctx context.Context, name string, subscribe bool) error {
	if err := validName(name); err != nil {
		return err
	}
	s.mu.Lock()
	_, exists := s.mboxes[name]
	s.mu.Unlock()
	if exists {
		return ErrExists
	}
	// Parents first (RFC 9051 §6.3.4 lets a server create them).
	if i := strings.LastIndexByte(name, '/'); i > 0 {
		if err := s.createTree(ctx, name[:i], subscribe); err != nil && !errors.Is(err, ErrExists) {
			return err
		}
	}
	if err := s.createMailbox(ctx, name, "", subscribe); err != nil || !subscribe {
		return err
	}
	return s.changeSubscriptions(func(set map[string]bool) { set[name] = true })
}

// createMailbox makes a mailbox's document and index entry; subscribed
// is for its document's field from before the subscriptions document
// (the caller subscribes it).
func (s *Store) createMailbox(ctx context.Context, name, special string, subscribed bool) error {
	body, _ := json.Marshal(mailboxDoc{Type: typeMailbox, Name: name, Special: special, Subscribed: subscribed})
	if err := s.docs.Put(s.mailboxDocID(name), body); err != nil {
		return fmt.Errorf("mailstore: storing a mailbox's document: %w", err)
	}
	return s.indexMailbox(name, special)
}

// DeleteMailbox deletes a mailbox and its messages. INBOX cannot be
// deleted. Its subscription stays (RFC 3501 §6.3.6: the server does not
// remove a name from the list): LIST then shows the name \NonExistent
// (RFC 5258).
func (s *Store) DeleteMailbox(ctx context.Context, name string) error {
	defer s.poke()
	name = NormalizeName(name)
	if name == "INBOX" {
		return errors.New("mailstore: INBOX cannot be deleted")
	}
	s.mu.Lock()
	mb := s.mboxes[name]
	var ids []string
	if mb != nil {
		for _, u := range mb.uids {
			ids = append(ids, mb.byUID[u].id)
		}
	}
	s.mu.Unlock()
	if mb == nil {
		return ErrNoMailbox
	}
	if err := s.docs.Modify(ids, func(string, []byte) ([]byte, bool, bool, error) { return nil, true, false, nil }); err != nil {
		return fmt.Errorf("mailstore: deleting a mailbox's messages: %w", err)
	}
	if err := s.docs.Delete(s.mailboxDocID(name)); err != nil {
		return fmt.Errorf("mailstore: deleting a mailbox's document: %w", err)
	}
	return s.dropMailboxIndex(name)
}

// RenameMailbox renames a mailbox and its children, and moves their
// subscriptions (RFC 3501 §6.3.5 allows it), those of names under it
// that no mailbox has too. Renaming INBOX moves its messages into the
// new mailbox and leaves INBOX empty (RFC 9051 §6.3.6); its
// subscription is copied.
func (s *Store) RenameMailbox(ctx context.Context, oldName, newName string) error {
	defer s.poke()
	oldName, newName = NormalizeName(oldName), NormalizeName(newName)
	if err := validName(newName); err != nil {
		return err
	}
	s.mu.Lock()
	var names []string
	for n := range s.mboxes {
		if n == oldName || strings.HasPrefix(n, oldName+"/") {
			names = append(names, n)
		}
	}
	_, exists := s.mboxes[newName]
	s.mu.Unlock()
	if len(names) == 0 {
		return ErrNoMailbox
	}
	if exists {
		return ErrExists
	}
	if oldName == "INBOX" {
		names = []string{"INBOX"}
	}
	slices.Sort(names)
	for _, n := range names {
		target := newName + strings.TrimPrefix(n, oldName)
		if err := s.createTree(ctx, target, false); err != nil && !errors.Is(err, ErrExists) {
			return err
		}
		msgs, err := s.Messages(n)
		if err != nil {
			return err
		}
		uids := make([]uint32, len(msgs))
		for i, m := range msgs {
			uids[i] = m.UID
		}
		if len(uids) > 0 {
			if _, _, _, err := s.Move(ctx, n, uids, target); err != nil {
				return err
			}
		}
		if n != "INBOX" {
			if err := s.docs.Delete(s.mailboxDocID(n)); err != nil {
				return fmt.Errorf("mailstore: deleting a renamed mailbox's document: %w", err)
			}
			if err := s.dropMailboxIndex(n); err != nil {
				return err
			}
		}
	}
	if err := s.moveSubscriptions(oldName, newName); err != nil {
		return err
	}
	s.emit(Event{Kind: EventMailboxes, Mailbox: newName})
	return nil
}

// Append stores a new message in mbox.
func (s *Store) Append(ctx context.Context, mbox string, raw []byte, flags []string, date time.Time) (Message, uint32, error) {
	id, err := seal.RandomDocID()
	if err != nil {
		return Message{}, 0, fmt.Errorf("mailstore: making a message's document id: %w", err)
	}
	return s.appendWithID(ctx, id, mbox, raw, flags, date, true)
}

// AppendWithID is Append with a chosen document id: a message that two
// devices store independently (from the incoming queue) gets one document
// and so appears once.
func (s *Store) AppendWithID(ctx context.Context, id, mbox string, raw []byte, flags []string, date time.Time) (Message, uint32, error) {
	return s.appendWithID(ctx, id, mbox, raw, flags, date, false)
}

// appendWithID is AppendWithID; fresh says id was just made at random,
// so no device can have stored it.
func (s *Store) appendWithID(ctx context.Context, id, mbox string, raw []byte, flags []string, date time.Time, fresh bool) (Message, uint32, error) {
	defer s.poke()
	mbox = NormalizeName(mbox)
	if len(raw) > MaxMessageSize {
		return Message{}, 0, fmt.Errorf("mailstore: message larger than %d bytes", MaxMessageSize)
	}
	s.mu.Lock()
	mb := s.mboxes[mbox]
	existing := s.byID[id]
	s.mu.Unlock()
	if mb == nil {
		return Message{}, 0, ErrNoMailbox
	}
	if existing == nil && !fresh {
		// Another device may have stored it already; its document (with
		// whatever flags it has since) is the one to keep.
		if _, err := s.docs.Get(id); err == nil {
			if err := s.applyMessage(ctx, id); err != nil {
				return Message{}, 0, fmt.Errorf("mailstore: indexing the message as stored by another device: %w", err)
			}
			s.mu.Lock()
			existing = s.byID[id]
			s.mu.Unlock()
		}
	}
	if existing != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		return existing.message(), s.mboxes[existing.mbox].state.UIDValidity, nil
	}
	if date.IsZero() {
		date = time.Now()
	}
	// The indexer parses the message while the blob is sealed; the blob,
	// the document and the index entry are then written in one
	// transaction of the local store, shared with the appends of other
	// callers meanwhile (indexQueued): one commit makes the message
	// durable.
	metaCh := make(chan []byte, 1)
	go func() { metaCh <- s.metaFor(raw) }()
	md := messageDoc{Type: typeMessage, Mbox: mbox, Blob: s.docs.BlobID(raw), Size: int64(len(raw)), Date: date.UTC().Truncate(time.Second), Flags: normFlags(flags)}
	body, _ := json.Marshal(md)
	stage, err := s.docs.Stage([][]byte{raw}, []docsync.Doc{{ID: id, Body: body, New: fresh}})
	meta := <-metaCh
	if err != nil {
		return Message{}, 0, fmt.Errorf("mailstore: storing a message: %w", err)
	}
	m, err := s.indexQueued(&pending{origin: originOf(ctx), id: id, md: md, meta: meta, stage: stage})
	if err != nil {
		return Message{}, 0, err
	}
	stage.Committed()
	s.mu.Lock()
	defer s.mu.Unlock()
	return m.message(), mb.state.UIDValidity, nil
}

// lookup finds the messages of mbox with the given UIDs (unknown UIDs
// are skipped), in UID order.
func (s *Store) lookup(mbox string, uids []uint32) (*mbox, []*msg, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookupLocked(mbox, uids)
}

func (s *Store) lookupLocked(mbox string, uids []uint32) (*mbox, []*msg, error) {
	mb := s.mboxes[NormalizeName(mbox)]
	if mb == nil {
		return nil, nil, ErrNoMailbox
	}
	sorted := slices.Clone(uids)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	var out []*msg
	for _, u := range sorted {
		if m := mb.byUID[u]; m != nil {
			out = append(out, m)
		}
	}
	return mb, out, nil
}

// StoreFlags changes the flags of messages and returns them as they are
// now. A message whose flags were already as asked keeps its MODSEQ.
func (s *Store) StoreFlags(ctx context.Context, mbox string, uids []uint32, op FlagOp, flags []string) ([]Message, error) {
	out, _, err := s.storeFlags(ctx, mbox, uids, op, flags, nil)
	return out, err
}

// storeFlags is StoreFlags, and with unchangedSince StoreFlagsIf. It
// holds the store's lock from the check of the MODSEQs to the index's
// update, so no other change comes between.
func (s *Store) storeFlags(ctx context.Context, mbox string, uids []uint32, op FlagOp, flags []string, unchangedSince *uint64) ([]Message, []uint32, error) {
	defer s.poke()
	flags = normFlags(flags)
	apply := func(cur []string) []string {
		switch op {
		case FlagsSet:
			return slices.Clone(flags)
		case FlagsAdd:
			return normFlags(append(slices.Clone(cur), flags...))
		default:
			return slices.DeleteFunc(slices.Clone(cur), func(f string) bool { return slices.Contains(flags, f) })
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, all, err := s.lookupLocked(mbox, uids)
	if err != nil {
		return nil, nil, err
	}
	var ms []*msg
	var failed []uint32
	for _, m := range all {
		if unchangedSince != nil && m.modseq > *unchangedSince {
			failed = append(failed, m.uid)
			continue
		}
		ms = append(ms, m)
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.id
	}
	if len(ms) == 0 {
		return []Message{}, failed, nil // no transaction (and no disk sync) for nothing
	}
	// The operation applies to each document as it is now (it may hold
	// flags another device set that the index has not seen yet), not to
	// the index's copy.
	result := map[string][]string{}
	err = s.docs.Modify(ids, func(id string, body []byte) ([]byte, bool, bool, error) {
		var md messageDoc
		if err := json.Unmarshal(body, &md); err != nil {
			return nil, false, true, nil
		}
		cur := normFlags(md.Flags)
		nf := apply(cur)
		result[id] = nf
		if slices.Equal(nf, cur) {
			return nil, false, true, nil
		}
		md.Flags = nf
		nb, err := json.Marshal(md)
		return nb, false, false, err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("mailstore: changing flags: %w", err)
	}
	var changed []*msg
	var newFlags [][]string
	for _, m := range ms {
		if nf, ok := result[m.id]; ok {
			changed = append(changed, m)
			newFlags = append(newFlags, nf)
		}
	}
	if err := s.setFlagsManyLocked(originOf(ctx), changed, newFlags); err != nil {
		return nil, nil, err
	}
	out := make([]Message, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.message())
	}
	return out, failed, nil
}

// Copy copies messages to dest (new documents on the same blobs).
func (s *Store) Copy(ctx context.Context, src string, uids []uint32, dest string) ([]uint32, []uint32, uint32, error) {
	defer s.poke()
	return s.copyMove(ctx, src, uids, dest, false)
}

// Move moves messages to dest: the same documents, placed elsewhere.
func (s *Store) Move(ctx context.Context, src string, uids []uint32, dest string) ([]uint32, []uint32, uint32, error) {
	defer s.poke()
	return s.copyMove(ctx, src, uids, dest, true)
}

// copyMove copies or moves messages in a few transactions whatever
// their number: the documents in one, and (for a move) the index of the
// source in one, then the index of the destination in one.
func (s *Store) copyMove(ctx context.Context, src string, uids []uint32, dest string, move bool) ([]uint32, []uint32, uint32, error) {
	dest = NormalizeName(dest)
	_, ms, err := s.lookup(src, uids)
	if err != nil {
		return nil, nil, 0, err
	}
	s.mu.Lock()
	dmb := s.mboxes[dest]
	s.mu.Unlock()
	if dmb == nil {
		return nil, nil, 0, ErrNoMailbox
	}
	if move {
		ms = slices.DeleteFunc(ms, func(m *msg) bool { return m.mbox == dest })
	}
	if len(ms) == 0 {
		s.mu.Lock()
		defer s.mu.Unlock()
		return nil, nil, dmb.state.UIDValidity, nil
	}
	origin := originOf(ctx)
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.id
	}
	metas, err := s.MetaMany(ids)
	if err != nil {
		return nil, nil, 0, err
	}
	// Each document as it is now (flags another device set may not be
	// in the index yet), not the index's copy, placed in dest.
	docs := make([]messageDoc, len(ms))
	have := make([]bool, len(ms))
	if move {
		at := map[string]int{}
		for i, id := range ids {
			at[id] = i
		}
		err := s.docs.Modify(ids, func(id string, body []byte) ([]byte, bool, bool, error) {
			var cur messageDoc
			if err := json.Unmarshal(body, &cur); err != nil {
				return nil, false, true, nil
			}
			cur.Mbox = dest
			nb, err := json.Marshal(cur)
			if err == nil {
				i := at[id]
				docs[i], have[i] = cur, true
			}
			return nb, false, false, err
		})
		if err != nil {
			return nil, nil, 0, fmt.Errorf("mailstore: moving messages: %w", err)
		}
	} else {
		var batch []docsync.Doc
		for i, m := range ms {
			md := messageDoc{Type: typeMessage, Blob: m.blob, Size: m.size, Date: m.date, Flags: slices.Clone(m.flags)}
			if d, err := s.docs.Get(m.id); err == nil {
				var cur messageDoc
				if json.Unmarshal(d.Body, &cur) == nil && cur.Type == typeMessage {
					md = cur
				}
			}
			md.Mbox = dest
			id, err := seal.RandomDocID()
			if err != nil {
				return nil, nil, 0, fmt.Errorf("mailstore: making a copy's document id: %w", err)
			}
			body, _ := json.Marshal(md)
			batch = append(batch, docsync.Doc{ID: id, Body: body})
			ids[i], docs[i], have[i] = id, md, true
		}
		if err := s.docs.PutBatch(batch); err != nil {
			return nil, nil, 0, fmt.Errorf("mailstore: storing copies' documents: %w", err)
		}
	}
	var todo []*pending
	var from []*msg
	for i, m := range ms {
		if !have[i] {
			continue // gone meanwhile (expunged here or by another device)
		}
		md := docs[i]
		md.Flags = normFlags(md.Flags)
		todo = append(todo, &pending{origin: origin, id: ids[i], md: md, meta: metas[i]})
		from = append(from, m)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if move {
		if err := s.unindexManyLocked(origin, from); err != nil {
			return nil, nil, 0, err
		}
	}
	s.addLocked(todo)
	var srcUIDs, destUIDs []uint32
	for i, p := range todo {
		if p.err != nil {
			return srcUIDs, destUIDs, 0, p.err
		}
		srcUIDs = append(srcUIDs, from[i].uid)
		destUIDs = append(destUIDs, p.m.uid)
	}
	return srcUIDs, destUIDs, dmb.state.UIDValidity, nil
}

// Expunge deletes messages: those with the given UIDs that are marked
// \Deleted, or with nil UIDs every \Deleted message of mbox.
func (s *Store) Expunge(ctx context.Context, mbox string, uids []uint32) ([]uint32, error) {
	defer s.poke()
	var ms []*msg
	if uids == nil {
		s.mu.Lock()
		mb := s.mboxes[NormalizeName(mbox)]
		if mb == nil {
			s.mu.Unlock()
			return nil, ErrNoMailbox
		}
		for _, u := range mb.uids {
			ms = append(ms, mb.byUID[u])
		}
		s.mu.Unlock()
	} else {
		var err error
		if _, ms, err = s.lookup(mbox, uids); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	ms = slices.DeleteFunc(ms, func(m *msg) bool { return !slices.Contains(m.flags, `\Deleted`) })
	s.mu.Unlock()
	if len(ms) == 0 {
		return []uint32{}, nil // no transaction (and no disk sync) for nothing
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.id
	}
	if err := s.docs.Modify(ids, func(string, []byte) ([]byte, bool, bool, error) { return nil, true, false, nil }); err != nil {
		return nil, fmt.Errorf("mailstore: deleting messages: %w", err)
	}
	s.mu.Lock()
	err := s.unindexManyLocked(originOf(ctx), ms)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	out := make([]uint32, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.uid)
	}
	return out, nil
}

// NewMessage is one message of AppendBatch.
type NewMessage struct {
	ID    string // document id; empty for a random one
	Raw   []byte
	Flags []string
	Date  time.Time
}

// AppendBatch stores many messages in mbox with one transaction of the
// local store in all (blobs, documents and index): how incoming
// mail, imports and MULTIAPPEND keep up. Messages whose id is already stored are skipped.
func (s *Store) AppendBatch(ctx context.Context, mbox string, msgs []NewMessage) ([]Message, error) {
	defer s.poke()
	mbox = NormalizeName(mbox)
	s.mu.Lock()
	mb := s.mboxes[mbox]
	s.mu.Unlock()
	if mb == nil {
		return nil, ErrNoMailbox
	}
	var (
		todo []*pending
		out  []Message
	)
	for _, nm := range msgs {
		if len(nm.Raw) > MaxMessageSize {
			return nil, fmt.Errorf("mailstore: message larger than %d bytes", MaxMessageSize)
		}
		id, fresh := nm.ID, nm.ID == ""
		if fresh {
			var err error
			if id, err = seal.RandomDocID(); err != nil {
				return nil, fmt.Errorf("mailstore: making a message's document id: %w", err)
			}
		}
		s.mu.Lock()
		existing := s.byID[id]
		s.mu.Unlock()
		if existing != nil {
			out = append(out, existing.message())
			continue
		}
		if !fresh {
			if _, err := s.docs.Get(id); err == nil {
				// Stored by another device meanwhile: index its version.
				if err := s.applyMessage(ctx, id); err != nil {
					return nil, fmt.Errorf("mailstore: indexing a message as stored by another device: %w", err)
				}
				continue
			}
		}
		date := nm.Date
		if date.IsZero() {
			date = time.Now()
		}
		meta := s.metaFor(nm.Raw)
		md := messageDoc{Type: typeMessage, Mbox: mbox, Blob: s.docs.BlobID(nm.Raw), Size: int64(len(nm.Raw)), Date: date.UTC().Truncate(time.Second), Flags: normFlags(nm.Flags)}
		body, _ := json.Marshal(md)
		stage, err := s.docs.Stage([][]byte{nm.Raw}, []docsync.Doc{{ID: id, Body: body, New: fresh}})
		if err != nil {
			return nil, fmt.Errorf("mailstore: storing messages: %w", err)
		}
		todo = append(todo, &pending{origin: originOf(ctx), id: id, md: md, meta: meta, stage: stage})
	}
	if len(todo) == 0 {
		return out, nil
	}
	// The entries are read under the lock: a STORE may change one as
	// soon as it is indexed.
	s.mu.Lock()
	s.addLocked(todo)
	added := make([]Message, len(todo))
	for i, p := range todo {
		if p.err == nil {
			added[i] = p.m.message()
		}
	}
	s.mu.Unlock()
	for i, p := range todo {
		if p.err != nil {
			return nil, p.err
		}
		p.stage.Committed()
		out = append(out, added[i])
	}
	return out, nil
}
