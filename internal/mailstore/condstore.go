package mailstore

import (
	"context"
	"slices"
	"sort"
)

// MODSEQs (RFC 7162 CONDSTORE and QRESYNC) and \Recent (RFC 3501
// §2.3.2), both per device: neither is synced, and another device's
// MODSEQs are its own.
//
// MODSEQs come from one counter for the store (in the index, with the
// UIDs), so each mailbox's grow strictly and are never reused, under any
// UIDVALIDITY. A message gets a new MODSEQ when it arrives (appended
// here, copied, moved in, or synced from another device), when its flags
// change (here or, once synced, on another device) and when it is
// expunged; the MODSEQ of the last change of a mailbox is its
// HIGHESTMODSEQ. A change to nothing (flags set to what they were) gets
// none. Expunged UIDs are kept with the MODSEQ of their expunge, for
// VANISHED (EARLIER).
//
// \Recent: each mailbox has a floor, the highest UID that a session has
// claimed. The session that selects a mailbox claims every message above
// the floor (ClaimRecent); a message that arrives while sessions have the
// mailbox selected is claimed by the first of them to ask (RaiseRecent).
// The floor is kept in the index and written with its next transaction,
// when the worker is idle, or at Close; a crash before then makes those
// messages \Recent once more, as RFC 3501 prefers to losing them.

// ClaimRecent raises the \Recent floor of mbox to its highest UID and
// returns the floor it had: the messages above that are \Recent for the
// caller (the session that selects the mailbox), and for no one else.
func (s *Store) ClaimRecent(ctx context.Context, mbox string) (floor uint32, err error) {
	mbox = NormalizeName(mbox)
	s.mu.Lock()
	defer s.mu.Unlock()
	mb := s.mboxes[mbox]
	if mb == nil {
		return 0, ErrNoMailbox
	}
	floor = mb.state.Recent
	if top := mb.state.UIDNext - 1; top > floor {
		mb.state.Recent = top
		s.lazy.mboxes[mbox] = true
		s.poke()
	}
	return floor, nil
}

// RaiseRecent claims the message uid of mbox as \Recent for the caller
// (a session that has the mailbox selected, told of its arrival): it
// reports whether it was still unclaimed, and raises the floor to it.
// Messages below it that are unclaimed are claimed with it, so a session
// calls it for the new messages in UID order.
func (s *Store) RaiseRecent(ctx context.Context, mbox string, uid uint32) (claimed bool, err error) {
	mbox = NormalizeName(mbox)
	s.mu.Lock()
	defer s.mu.Unlock()
	mb := s.mboxes[mbox]
	if mb == nil {
		return false, ErrNoMailbox
	}
	if uid <= mb.state.Recent {
		return false, nil
	}
	mb.state.Recent = uid
	s.lazy.mboxes[mbox] = true
	s.poke()
	return true, nil
}

// recentLocked counts the messages above the \Recent floor.
func (mb *mbox) recentLocked() uint32 {
	i, _ := slices.BinarySearch(mb.uids, mb.state.Recent+1)
	return uint32(len(mb.uids) - i)
}

// Vanished lists, in UID order, the UIDs of mbox expunged on this device
// at a MODSEQ above sinceModSeq (under the mailbox's current UIDVALIDITY):
// for QRESYNC's VANISHED (EARLIER). It may name UIDs the client never
// saw; an unknown mailbox has none. Only the last 50,000 or so expunges
// of a mailbox are kept: for a sinceModSeq below MailboxInfo.VanishedFloor
// the list is incomplete.
func (s *Store) Vanished(mbox string, sinceModSeq uint64) []uint32 {
	mbox = NormalizeName(mbox)
	s.mu.Lock()
	defer s.mu.Unlock()
	mb := s.mboxes[mbox]
	if mb == nil {
		return nil
	}
	i := sort.Search(len(mb.vanished), func(i int) bool { return mb.vanished[i].modseq > sinceModSeq })
	out := make([]uint32, 0, len(mb.vanished)-i)
	for _, v := range mb.vanished[i:] {
		out = append(out, v.uid)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// StoreFlagsIf is StoreFlags with RFC 7162's UNCHANGEDSINCE: it changes
// only the messages whose MODSEQ is at most unchangedSince, checked and
// changed under the store's lock (no other writer comes between). changed
// holds the messages that met the condition, as they are now (one whose
// flags were already as asked keeps its MODSEQ: a change to nothing gets
// none); failed the UIDs of those that did not (for the MODIFIED response
// code), in UID order. UIDs not in the mailbox are in neither.
func (s *Store) StoreFlagsIf(ctx context.Context, mbox string, uids []uint32, op FlagOp, flags []string, unchangedSince uint64) (changed []Message, failed []uint32, err error) {
	return s.storeFlags(ctx, mbox, uids, op, flags, &unchangedSince)
}
