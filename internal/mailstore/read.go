package mailstore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/bitmask-go/bitmask/internal/localstore"
)

// MailboxInfo describes a mailbox. It costs the same whatever the
// mailbox holds (the counts are kept as messages change).
type MailboxInfo struct {
	Name    string
	Special string
	// Subscribed says the mailbox is subscribed; Subscriptions lists
	// the subscribed names, those that no mailbox has too.
	Subscribed  bool
	UIDValidity uint32
	UIDNext     uint32
	Messages    uint32
	Unseen      uint32
	// HighestModSeq is the mailbox's HIGHESTMODSEQ (RFC 7162): the
	// MODSEQ of its last change on this device, at least 1.
	HighestModSeq uint64
	// Recent counts the messages above the \Recent floor: those that
	// the next ClaimRecent makes \Recent (none of the sessions that have
	// the mailbox selected has claimed them).
	Recent uint32
	// VanishedFloor is the MODSEQ below which Vanished is incomplete
	// (the oldest of a long log of expunged UIDs are dropped): for a
	// QRESYNC from below it, report instead the UIDs of the client's
	// range that no longer exist. 0 while nothing was dropped.
	VanishedFloor uint64
}

// Message is a message as IMAP sees it.
type Message struct {
	UID   uint32
	ID    string
	Flags []string
	Size  int64
	Date  time.Time
	// ModSeq is the MODSEQ of the message's last change on this device
	// (its arrival, or a flag change from this device or another one).
	ModSeq uint64
}

// Mailboxes lists the mailboxes by name.
func (s *Store) Mailboxes() []MailboxInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]MailboxInfo, 0, len(s.mboxes))
	for _, mb := range s.mboxes {
		out = append(out, s.infoLocked(mb))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (s *Store) infoLocked(mb *mbox) MailboxInfo {
	return MailboxInfo{
		Name: mb.name, Special: mb.special, Subscribed: s.subs[mb.name],
		UIDValidity: mb.state.UIDValidity, UIDNext: mb.state.UIDNext,
		Messages: uint32(len(mb.uids)), Unseen: uint32(mb.unseen),
		HighestModSeq: mb.state.HighestModSeq, Recent: mb.recentLocked(),
		VanishedFloor: mb.state.VanishedFloor,
	}
}

// Mailbox describes one mailbox.
func (s *Store) Mailbox(name string) (MailboxInfo, error) {
	name = NormalizeName(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	mb := s.mboxes[name]
	if mb == nil {
		return MailboxInfo{}, ErrNoMailbox
	}
	return s.infoLocked(mb), nil
}

// Messages is a snapshot of a mailbox in UID order.
func (s *Store) Messages(name string) ([]Message, error) {
	name = NormalizeName(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	mb := s.mboxes[name]
	if mb == nil {
		return nil, ErrNoMailbox
	}
	out := make([]Message, len(mb.uids))
	for i, u := range mb.uids {
		m := mb.byUID[u]
		out[i] = Message{UID: m.uid, ID: m.id, Flags: m.flags, Size: m.size, Date: m.date, ModSeq: m.modseq}
	}
	return out, nil
}

// Raw is a message's content, decrypted in memory. A message expunged
// in the last few minutes is still read (expunged.go): an IMAP session
// that was not yet told of the expunge may still fetch it.
func (s *Store) Raw(ctx context.Context, id string) ([]byte, error) {
	s.mu.Lock()
	blob := ""
	if m := s.byID[id]; m != nil {
		blob = m.blob
	} else if g := s.gone.byID[id]; g != nil {
		blob = g.blob
	}
	s.mu.Unlock()
	if blob == "" {
		return nil, ErrNoMessage
	}
	raw, err := s.docs.Blob(ctx, blob)
	if err != nil {
		return nil, fmt.Errorf("mailstore: reading a message's content: %w", err)
	}
	return raw, nil
}

// Meta is what the Indexer computed for a message. Unlike Raw, it
// answers ErrNoMessage as soon as the message is expunged (or moved out
// of every mailbox): that is how a reader tells a message that is gone
// (the full-text index forgets it then), and a FETCH that finds no
// metadata computes it from Raw.
func (s *Store) Meta(id string) ([]byte, error) {
	s.mu.Lock()
	m := s.byID[id]
	s.mu.Unlock()
	if m == nil {
		return nil, ErrNoMessage
	}
	var meta []byte
	err := s.st.View(func(tx *localstore.Tx) error {
		v, err := tx.GetSeq(bucketMeta, m.slot)
		meta = v
		return err
	})
	if errors.Is(err, localstore.ErrNotFound) {
		return nil, ErrNoMessage
	}
	if err != nil {
		return nil, fmt.Errorf("mailstore: reading a message's metadata: %w", err)
	}
	return meta, nil
}

// MetaMany reads the metadata of many messages in one transaction; an
// entry is nil for a message without.
func (s *Store) MetaMany(ids []string) ([][]byte, error) {
	out := make([][]byte, len(ids))
	slots := make([]uint64, len(ids))
	s.mu.Lock()
	for i, id := range ids {
		if m := s.byID[id]; m != nil {
			slots[i] = m.slot
		}
	}
	s.mu.Unlock()
	err := s.st.View(func(tx *localstore.Tx) error {
		for i, slot := range slots {
			if slot == 0 {
				continue
			}
			v, err := tx.GetSeq(bucketMeta, slot)
			if errors.Is(err, localstore.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			out[i] = v
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("mailstore: reading messages' metadata: %w", err)
	}
	return out, nil
}
