package imapd

import (
	"errors"
	"reflect"
	"slices"
	"sort"

	"github.com/bitmask-go/bitmask/internal/mailstore"
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// view is a session's selection of a mailbox: the shared hub, the
// session's own tracker (what its client has not been told yet) and the
// SEARCHRES result.
type view struct {
	hub       *hub
	sess      *session
	tracker   *imapserver.SessionTracker
	readOnly  bool
	searchRes imap.UIDSet   // RFC 5182 "$"; only the session's goroutine uses it
	wake      chan struct{} // the hub queued something (buffered, 1)
}

// target is a message addressed by a command.
type target struct {
	seq uint32 // as the client numbers it
	uid uint32
	e   *entry
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
					out = append(out, target{seq: c, uid: h.uids[sn-1], e: h.msgs[sn-1]})
				}
				if c == r[1] {
					break
				}
			}
		}
	case imap.UIDSet:
		if len(h.uids) == 0 {
			return nil
		}
		ranges := make([][2]uint32, len(set))
		for i, r := range set {
			ranges[i] = [2]uint32{uint32(r.Start), uint32(r.Stop)}
		}
		for _, r := range staticRanges(ranges, h.uids[len(h.uids)-1]) {
			i := sort.Search(len(h.uids), func(i int) bool { return h.uids[i] >= r[0] })
			for ; i < len(h.uids) && h.uids[i] <= r[1]; i++ {
				if c := v.tracker.EncodeSeqNum(uint32(i) + 1); c != 0 {
					out = append(out, target{seq: c, uid: h.uids[i], e: h.msgs[i]})
				}
			}
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

func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	v := s.view
	if v.readOnly {
		return errReadOnly
	}
	fl, err := storeFlags(flags.Flags)
	if err != nil {
		return err
	}
	targets := v.resolve(numSet)
	if len(targets) == 0 {
		return nil
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
	updated, err := s.store.StoreFlags(s.opCtx(), v.hub.name, uids(targets), op, fl)
	if err != nil {
		return s.storeErr("STORE", err, imap.ResponseCodeNonExistent)
	}
	// Others are told through the hub; this client by the responses
	// below, or not at all with .SILENT (RFC 9051 §6.4.6).
	v.hub.applyFlags(updated, v)
	if flags.Silent {
		return nil
	}
	now := make(map[uint32][]string, len(updated))
	for _, m := range updated {
		now[m.UID] = m.Flags
	}
	for _, t := range targets {
		f, ok := now[t.uid]
		if !ok {
			continue
		}
		rw := s.createMessage(w, t.seq)
		rw.WriteUID(imap.UID(t.uid))
		rw.WriteFlags(imapFlags(f))
		if err := s.endMessage(rw); err != nil {
			return err
		}
	}
	return nil
}

func (s *session) Expunge(w *imapserver.ExpungeWriter, set *imap.UIDSet) error {
	v := s.view
	if v.readOnly {
		if isCloseWriter(w) {
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
	// Queued for every session, this one included: go-imap writes them
	// when the command completes.
	v.hub.applyExpunged(expunged)
	return nil
}

// isCloseWriter tells CLOSE's ExpungeWriter (which writes nothing) from
// EXPUNGE's. go-imap gives no other way to know; its field is read, not
// written.
func isCloseWriter(w *imapserver.ExpungeWriter) bool {
	if w == nil {
		return true
	}
	f := reflect.ValueOf(w).Elem().FieldByName("conn")
	return f.IsValid() && f.Kind() == reflect.Pointer && f.IsNil()
}

func (s *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
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

func (s *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	v := s.view
	if v.readOnly {
		return errReadOnly
	}
	dest = normalizeName(dest)
	if dest == v.hub.name {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Source and destination are the same mailbox"}
	}
	targets := v.resolve(numSet)
	if len(targets) == 0 {
		return nil
	}
	src, dst, uidValidity, err := s.store.Move(s.opCtx(), v.hub.name, uids(targets), dest)
	if err != nil {
		return s.storeErr("MOVE", err, imap.ResponseCodeTryCreate)
	}
	if len(src) == 0 {
		return nil
	}
	v.hub.applyExpunged(src)
	// COPYUID first, then the EXPUNGEs, which go-imap writes when the
	// command completes (RFC 6851 §4.3).
	return w.WriteCopyData(&imap.CopyData{UIDValidity: uidValidity, SourceUIDs: uidSet(src), DestUIDs: uidSet(dst)})
}

var errGone = errors.New("imapd: message gone")
