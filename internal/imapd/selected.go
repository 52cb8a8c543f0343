package imapd

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/emersion/go-imap/v2"

	"github.com/bitmask-go/bitmask/internal/imapproto"
	"github.com/bitmask-go/bitmask/internal/mailstore"
)

// view is a session's selection of a mailbox: the shared hub, the
// session's own tracker (what its client has not been told yet) and the
// SEARCHRES result.
type view struct {
	hub      *hub
	sess     *session
	tracker  *imapproto.SessionTracker
	readOnly bool
	// recent says the view takes part in \Recent: read-write, and the
	// session not IMAP4rev2, which has no \Recent (RFC 9051 §1.4): its
	// messages stay recent for an IMAP4rev1 session to claim.
	recent    bool
	serial    uint64      // order of selection: the first view with recent claims new messages as \Recent
	searchRes imap.UIDSet // RFC 5182 "$"; only the session's goroutine uses it

	// \Recent (RFC 3501 §2.3.2): UIDs in (recentLo, recentHi] were
	// claimed at SELECT, recentNew since (under hub.mu).
	recentLo, recentHi uint32
	recentNew          map[uint32]struct{}
}

// addRecent records a message this view claimed as \Recent (under hub.mu).
func (v *view) addRecent(uid uint32) {
	if v.recentNew == nil {
		v.recentNew = map[uint32]struct{}{}
	}
	v.recentNew[uid] = struct{}{}
}

// isRecentLocked says whether a message is \Recent in this session.
func (v *view) isRecentLocked(uid uint32) bool {
	if uid > v.recentLo && uid <= v.recentHi {
		return true
	}
	_, ok := v.recentNew[uid]
	return ok
}

// isRecent is isRecentLocked for the tracker's updates, which are
// written without hub.mu.
func (v *view) isRecent(uid imap.UID) bool {
	v.hub.mu.Lock()
	defer v.hub.mu.Unlock()
	return v.isRecentLocked(uint32(uid))
}

// target is a message addressed by a command.
type target struct {
	seq    uint32 // as the client numbers it
	uid    uint32
	e      *entry
	recent bool // \Recent in this session
	gone   bool // expunged; the client has not been told
}

// resolve turns a sequence or UID set into the messages it addresses that
// the client knows of, in order, without scanning the mailbox: sequence
// numbers go through the tracker to the hub's list, UIDs are found by
// binary search.
func (v *view) resolve(numSet imap.NumSet) []target {
	h := v.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if imap.IsSearchRes(numSet) {
		numSet = v.searchRes
	}
	var out []target
	switch set := numSet.(type) {
	case imap.SeqSet:
		last := v.clientMaxLocked()
		ranges := make([][2]uint32, len(set))
		for i, r := range set {
			ranges[i] = [2]uint32{r.Start, r.Stop}
		}
		for _, r := range staticRanges(ranges, last) {
			out = slices.Grow(out, int(r[1]-r[0]+1))
			for c := r[0]; ; c++ {
				if sn := v.tracker.DecodeSeqNum(c); sn != 0 {
					out = append(out, target{seq: c, uid: h.uids[sn-1], e: h.msgs[sn-1], recent: v.isRecentLocked(h.uids[sn-1])})
				} else if uid := uint32(v.tracker.ExpungedUID(c)); uid != 0 && h.ghosts[uid] != nil {
					// Expunged, and this client not told yet: answered
					// from what is left (RFC 2180 §4.1.1).
					out = append(out, target{seq: c, uid: uid, e: h.ghosts[uid], gone: true})
				}
				if c == r[1] {
					break
				}
			}
		}
	case imap.UIDSet:
		// Messages expunged that this client has not been told of are
		// answered from what is left (RFC 2180 §4.1.1), as by sequence
		// number; "*" is the highest UID the client knows.
		var ghosts []target
		last := uint32(0)
		if len(h.uids) > 0 {
			last = h.uids[len(h.uids)-1]
		}
		for uid, e := range h.ghosts {
			if !v.tracker.HasPendingExpunges() {
				break
			}
			if c := v.tracker.ExpungedSeq(imap.UID(uid)); c != 0 {
				ghosts = append(ghosts, target{seq: c, uid: uid, e: e, gone: true})
				last = max(last, uid)
			}
		}
		if last == 0 {
			return nil
		}
		ranges := make([][2]uint32, len(set))
		for i, r := range set {
			ranges[i] = [2]uint32{uint32(r.Start), uint32(r.Stop)}
		}
		static := staticRanges(ranges, last)
		for _, r := range static {
			i := sort.Search(len(h.uids), func(i int) bool { return h.uids[i] >= r[0] })
			for ; i < len(h.uids) && h.uids[i] <= r[1]; i++ {
				if c := v.tracker.EncodeSeqNum(uint32(i) + 1); c != 0 {
					out = append(out, target{seq: c, uid: h.uids[i], e: h.msgs[i], recent: v.isRecentLocked(h.uids[i])})
				}
			}
		}
		added := false
		for _, g := range ghosts {
			for _, r := range static {
				if g.uid >= r[0] && g.uid <= r[1] {
					out = append(out, g)
					added = true
					break
				}
			}
		}
		if added {
			slices.SortFunc(out, func(a, b target) int { return cmp.Compare(a.seq, b.seq) })
		}
	}
	return out
}

// clientMaxLocked is the highest sequence number the client knows ("*").
// Messages expunged but not yet reported at the end are not counted.
func (v *view) clientMaxLocked() uint32 {
	for sn := uint32(len(v.hub.uids)); sn >= 1; sn-- {
		if c := v.tracker.EncodeSeqNum(sn); c != 0 {
			return c
		}
	}
	return 0
}

// staticRanges replaces "*" (0) with last, orders each range, clamps it
// to [1, last], and sorts and merges the result.
func staticRanges(in [][2]uint32, last uint32) [][2]uint32 {
	if last == 0 {
		return nil
	}
	out := make([][2]uint32, 0, len(in))
	for _, r := range in {
		lo, hi := r[0], r[1]
		if lo == 0 {
			lo = last
		}
		if hi == 0 {
			hi = last
		}
		if lo > hi {
			lo, hi = hi, lo
		}
		if lo > last {
			continue
		}
		hi = min(hi, last)
		lo = max(lo, 1)
		out = append(out, [2]uint32{lo, hi})
	}
	slices.SortFunc(out, func(a, b [2]uint32) int { return int(int64(a[0]) - int64(b[0])) })
	merged := out[:0]
	for _, r := range out {
		if n := len(merged); n > 0 && uint64(r[0]) <= uint64(merged[n-1][1])+1 {
			merged[n-1][1] = max(merged[n-1][1], r[1])
			continue
		}
		merged = append(merged, r)
	}
	return merged
}

func uids(ts []target) []uint32 {
	out := make([]uint32, len(ts))
	for i, t := range ts {
		out[i] = t.uid
	}
	return out
}

func uidSet(l []uint32) imap.UIDSet {
	var s imap.UIDSet
	for _, u := range l {
		s.AddNum(imap.UID(u))
	}
	return s
}

// Store changes flags (RFC 9051 §6.4.6), with CONDSTORE's UNCHANGEDSINCE
// (RFC 7162 §3.1.3): messages changed since are left alone and returned
// for OK [MODIFIED].
func (s *session) Store(w *imapproto.FetchWriter, kind imapproto.NumKind, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) (imap.NumSet, error) {
	v := s.view
	if v.readOnly {
		return nil, errReadOnly
	}
	fl, err := storeFlags(flags.Flags)
	if err != nil {
		return nil, err
	}
	targets := v.resolve(numSet)
	if len(targets) == 0 {
		return nil, nil
	}
	var op mailstore.FlagOp
	switch flags.Op {
	case imap.StoreFlagsSet:
		op = mailstore.FlagsSet
	case imap.StoreFlagsAdd:
		op = mailstore.FlagsAdd
	case imap.StoreFlagsDel:
		op = mailstore.FlagsRemove
	}
	var (
		updated []mailstore.Message
		failed  []uint32
	)
	if options != nil && options.UnchangedSince != 0 {
		updated, failed, err = s.store.StoreFlagsIf(s.opCtx(), v.hub.name, uids(targets), op, fl, options.UnchangedSince)
	} else {
		updated, err = s.store.StoreFlags(s.opCtx(), v.hub.name, uids(targets), op, fl)
	}
	if err != nil {
		return nil, s.storeErr("STORE", err, imap.ResponseCodeNonExistent)
	}
	// Others are told through the hub; this client by the responses
	// below, or not at all with .SILENT (RFC 9051 §6.4.6) unless it uses
	// CONDSTORE, which is told the new MODSEQs (RFC 7162 §3.1.3).
	v.hub.applyFlags(updated, v)
	var modified imap.NumSet
	if len(failed) > 0 {
		modified = v.numsOf(kind, failed)
	}
	// A new keyword's FLAGS goes out before the FETCHes that show it.
	if err := v.tracker.Poll(w.Updates(), false); err != nil {
		return nil, fmt.Errorf("imapd: writing mailbox updates: %w", err)
	}
	condstore := s.conn.Enabled(imap.CapCondStore)
	if flags.Silent && !condstore {
		return modified, nil
	}
	now := make(map[uint32]mailstore.Message, len(updated))
	for _, m := range updated {
		now[m.UID] = m
	}
	for _, t := range targets {
		m, ok := now[t.uid]
		if !ok {
			continue
		}
		rw := w.CreateMessage(t.seq)
		rw.WriteUID(imap.UID(t.uid))
		if !flags.Silent {
			fl := imapFlags(m.Flags)
			if t.recent {
				fl = append(fl, imap.Flag(`\Recent`))
			}
			rw.WriteFlags(fl)
		}
		if condstore {
			rw.WriteModSeq(m.ModSeq)
		}
		if err := rw.Close(); err != nil {
			return nil, fmt.Errorf("imapd: writing a FETCH response: %w", err)
		}
	}
	return modified, nil
}

// numsOf turns UIDs into the numbers of kind (sequence numbers as the
// client knows them).
func (v *view) numsOf(kind imapproto.NumKind, list []uint32) imap.NumSet {
	if kind == imapproto.NumKindUID {
		return uidSet(list)
	}
	h := v.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	var set imap.SeqSet
	for _, u := range list {
		if i, ok := h.find(u); ok {
			if c := v.tracker.EncodeSeqNum(uint32(i) + 1); c != 0 {
				set.AddNum(c)
			}
		}
	}
	return set
}

// Expunge removes \Deleted messages (EXPUNGE, UID EXPUNGE, CLOSE).
func (s *session) Expunge(w *imapproto.ExpungeWriter, set *imap.UIDSet, close bool) error {
	v := s.view
	if v.readOnly {
		if close {
			return nil // CLOSE of an EXAMINEd mailbox expunges nothing
		}
		return errReadOnly
	}
	var list []uint32 // nil: every \Deleted message
	if set != nil {
		list = uids(v.resolve(*set))
		if len(list) == 0 {
			return nil
		}
	}
	expunged, err := s.store.Expunge(s.opCtx(), v.hub.name, list)
	if err != nil {
		return s.storeErr("EXPUNGE", err, imap.ResponseCodeNonExistent)
	}
	// Queued for every session, this one included: written when the
	// command completes.
	v.hub.applyExpunged(expunged)
	return nil
}

func (s *session) Copy(kind imapproto.NumKind, numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	v := s.view
	targets := v.resolve(numSet)
	if len(targets) == 0 {
		return nil, nil
	}
	dest = normalizeName(dest)
	src, dst, uidValidity, err := s.store.Copy(s.opCtx(), v.hub.name, uids(targets), dest)
	if err != nil {
		return nil, s.storeErr("COPY", err, imap.ResponseCodeTryCreate)
	}
	if len(src) == 0 {
		return nil, nil
	}
	if dest == v.hub.name {
		v.hub.waitAdded(s.ctx, slices.Max(dst))
	}
	return &imap.CopyData{UIDValidity: uidValidity, SourceUIDs: uidSet(src), DestUIDs: uidSet(dst)}, nil
}

// Move moves messages (RFC 6851). Into the mailbox they are in, it is a
// copy and an expunge of the originals: they get new UIDs, as Dovecot
// does.
func (s *session) Move(w *imapproto.MoveWriter, kind imapproto.NumKind, numSet imap.NumSet, dest string) error {
	v := s.view
	if v.readOnly {
		return errReadOnly
	}
	dest = normalizeName(dest)
	targets := v.resolve(numSet)
	if len(targets) == 0 {
		return nil
	}
	var (
		src, dst    []uint32
		uidValidity uint32
		err         error
	)
	if dest == v.hub.name {
		src, dst, uidValidity, err = s.store.Copy(s.opCtx(), v.hub.name, uids(targets), dest)
		if err == nil && len(src) > 0 {
			v.hub.waitAdded(s.ctx, slices.Max(dst))
			// The originals go as EXPUNGE takes them: \Deleted first.
			var flagged []mailstore.Message
			if flagged, err = s.store.StoreFlags(s.opCtx(), v.hub.name, src, mailstore.FlagsAdd, []string{`\Deleted`}); err == nil {
				v.hub.applyFlags(flagged, v)
				var gone []uint32
				if gone, err = s.store.Expunge(s.opCtx(), v.hub.name, src); err == nil {
					v.hub.applyExpunged(gone)
				}
			}
		}
	} else {
		src, dst, uidValidity, err = s.store.Move(s.opCtx(), v.hub.name, uids(targets), dest)
		if err == nil && len(src) > 0 {
			v.hub.applyExpunged(src)
		}
	}
	if err != nil {
		return s.storeErr("MOVE", err, imap.ResponseCodeTryCreate)
	}
	if len(src) == 0 {
		return nil
	}
	// COPYUID first, then the EXPUNGEs (or VANISHED), which are written
	// when the command completes (RFC 6851 §4.3).
	return w.WriteCopyData(&imap.CopyData{UIDValidity: uidValidity, SourceUIDs: uidSet(src), DestUIDs: uidSet(dst)})
}

// resync answers SELECT (QRESYNC (...)) after the usual responses (RFC
// 7162 §3.2.5.2): VANISHED (EARLIER) with the known UIDs expunged since
// the client's MODSEQ, then the FETCHes of messages changed since.
func (v *view) resync(q *imapproto.QResyncParams) func(w *imapproto.UpdateWriter) error {
	return func(w *imapproto.UpdateWriter) error {
		h := v.hub
		known := func(uid uint32) bool { return q.KnownUIDs == nil || q.KnownUIDs.Contains(imap.UID(uid)) }
		if gone := v.vanishedSince(q.ModSeq, q.KnownUIDs); len(gone) > 0 {
			if err := w.WriteVanished(gone, true); err != nil {
				return err
			}
		}
		type change struct {
			seq, uid uint32
			e        *entry
			recent   bool
		}
		var changed []change
		h.mu.Lock()
		for i, e := range h.msgs {
			if e.modSeq > q.ModSeq && known(h.uids[i]) {
				if c := v.tracker.EncodeSeqNum(uint32(i) + 1); c != 0 {
					changed = append(changed, change{c, h.uids[i], e, v.isRecentLocked(h.uids[i])})
				}
			}
		}
		h.mu.Unlock()
		for _, c := range changed {
			flags := imapFlags(c.e.flags)
			if c.recent {
				flags = append(flags, imap.Flag(`\Recent`))
			}
			if err := w.WriteMessageFlags(c.seq, imap.UID(c.uid), flags, c.e.modSeq); err != nil {
				return err
			}
		}
		return nil
	}
}

var errGone = errors.New("imapd: message gone")

// vanishedSince lists the UIDs of within (nil: all) expunged since modSeq,
// for VANISHED (EARLIER). The store logs expunges for a while; when
// modSeq is older than its log (VanishedFloor), every UID of within up to
// the highest that is not in the mailbox is named (RFC 7162 §3.2.5.1
// allows UIDs the client never knew).
func (v *view) vanishedSince(modSeq uint64, within imap.UIDSet) imap.UIDSet {
	h := v.hub
	var gone imap.UIDSet
	if info, err := h.acct.store.Mailbox(h.name); err == nil && modSeq < info.VanishedFloor {
		h.mu.Lock()
		defer h.mu.Unlock()
		top := h.maxUID
		ranges := []imap.UIDRange{{Start: 1, Stop: imap.UID(top)}}
		if within != nil {
			ranges = within
		}
		for _, r := range ranges {
			lo, hi := uint32(r.Start), uint32(r.Stop)
			if hi == 0 || hi > top {
				hi = top
			}
			for u := max(lo, 1); u <= hi && u != 0; u++ {
				if _, ok := h.find(u); !ok {
					gone.AddNum(imap.UID(u))
				}
			}
		}
		return gone
	}
	for _, u := range h.acct.store.Vanished(h.name, modSeq) {
		if within == nil || within.Contains(imap.UID(u)) {
			gone.AddNum(imap.UID(u))
		}
	}
	return gone
}
