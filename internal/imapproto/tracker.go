package imapproto

// OWNED BY the conn helper.

import (
	"fmt"
	"sync"

	"github.com/emersion/go-imap/v2"
)

// A MailboxTracker follows one mailbox for the sessions that have it
// selected. The server tells it of every change, in the order the changes
// happen, with sequence numbers as the server sees the mailbox at that
// moment; each SessionTracker queues the changes until its client may be
// told (RFC 9051 §7.5.1: no EXPUNGE during FETCH, STORE or SEARCH by
// sequence number), and translates sequence numbers between the client's
// view and the server's meanwhile.
//
// The Queue methods panic on updates that contradict the tracker's count
// of messages (an expunge beyond it, a count that shrinks): the server's
// list and the tracker have parted, which is a bug the caller must end
// the mailbox's sessions for.
type MailboxTracker struct {
	mu       sync.Mutex
	num      uint32 // messages in the mailbox, as the server sees it
	sessions map[*SessionTracker]struct{}
}

// NewMailboxTracker tracks a mailbox that has num messages.
func NewMailboxTracker(num uint32) *MailboxTracker {
	return &MailboxTracker{num: num, sessions: map[*SessionTracker]struct{}{}}
}

// NewSession starts a session's view of the mailbox; its client knows the
// mailbox as it is now. Close it when the session leaves the mailbox.
func (t *MailboxTracker) NewSession() *SessionTracker {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := &SessionTracker{mbox: t, known: t.num}
	t.sessions[st] = struct{}{}
	return st
}

// NumMessages is the number of messages as the server sees it.
func (t *MailboxTracker) NumMessages() uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.num
}

type updateKind uint8

const (
	updExpunge updateKind = iota + 1
	updExists
	updMailboxFlags
	updMessageFlags
)

// update is one queued change. seq is the server's sequence number when
// the change was queued (expunge, message flags); for updExists, prev and
// num are the counts before and after (consecutive appends are merged).
type update struct {
	kind      updateKind
	seq       uint32
	prev, num uint32
	uid       imap.UID
	modSeq    uint64
	flags     []imap.Flag
	permanent []imap.Flag
}

func (t *MailboxTracker) queue(u update, source *SessionTracker) {
	for st := range t.sessions {
		if source != nil && st == source {
			continue
		}
		st.push(u)
	}
}

// QueueExpunge queues the expunge of the message the server numbers seq,
// whose UID is uid. Clients with QRESYNC enabled are told VANISHED uid,
// the others EXPUNGE with their sequence number.
func (t *MailboxTracker) QueueExpunge(seq uint32, uid imap.UID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if seq == 0 || seq > t.num {
		panic(fmt.Sprintf("imapproto: expunge of message %d of %d", seq, t.num))
	}
	t.queue(update{kind: updExpunge, seq: seq, uid: uid}, nil)
	t.num--
}

// QueueNumMessages queues EXISTS: the mailbox has n messages now, the new
// ones at its end. n equal to the current count queues nothing.
func (t *MailboxTracker) QueueNumMessages(n uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n < t.num {
		panic(fmt.Sprintf("imapproto: message count going down from %d to %d", t.num, n))
	}
	if n == t.num {
		return
	}
	t.queue(update{kind: updExists, prev: t.num, num: n}, nil)
	t.num = n
}

// QueueMailboxFlags queues * FLAGS (flags) and, when permanent is not nil,
// * OK [PERMANENTFLAGS (permanent)]. Queue it before the message flags
// update that uses a new keyword: updates are written in the order they
// were queued (RFC 3501 §7.2.6).
func (t *MailboxTracker) QueueMailboxFlags(flags, permanent []imap.Flag) {
	if flags == nil {
		flags = []imap.Flag{}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.queue(update{kind: updMailboxFlags, flags: flags, permanent: permanent}, nil)
}

// QueueMessageFlags queues * seq FETCH (UID uid FLAGS (flags) MODSEQ
// (modSeq)) for every session but source (nil: all); seq is the server's.
// MODSEQ goes only to clients that enabled CONDSTORE, and not when modSeq
// is 0. flags must not be changed afterwards.
func (t *MailboxTracker) QueueMessageFlags(seq uint32, uid imap.UID, flags []imap.Flag, modSeq uint64, source *SessionTracker) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if seq == 0 || seq > t.num {
		panic(fmt.Sprintf("imapproto: flags of message %d of %d", seq, t.num))
	}
	if flags == nil {
		flags = []imap.Flag{}
	}
	t.queue(update{kind: updMessageFlags, seq: seq, uid: uid, flags: flags, modSeq: modSeq}, source)
}

// A SessionTracker is one session's view of a tracked mailbox: the
// changes its client has not been told of yet.
type SessionTracker struct {
	mbox *MailboxTracker

	mu       sync.Mutex
	q        []update
	expunges int           // expunge updates in q
	known    uint32        // messages the client knows of
	notify   chan struct{} // set while Idle runs
	closed   bool

	// recent says whether a message is \Recent in this session (set
	// once, before the first Poll; called with no lock of the tracker
	// held).
	recent func(imap.UID) bool
}

// SetRecent gives the tracker the session's \Recent messages (RFC 3501
// §2.3.2): the FLAGS of an update for one of them then add \Recent, as
// the session's FETCH does. Call it before the first Poll or Idle.
func (st *SessionTracker) SetRecent(recent func(uid imap.UID) bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.recent = recent
}

// push appends u to the queue (under the mailbox's lock).
func (st *SessionTracker) push(u update) {
	st.mu.Lock()
	if u.kind == updExists {
		if n := len(st.q); n > 0 && st.q[n-1].kind == updExists {
			st.q[n-1].num = u.num
			u.kind = 0
		}
	}
	if u.kind != 0 {
		st.q = append(st.q, u)
		if u.kind == updExpunge {
			st.expunges++
		}
	}
	notify := st.notify
	st.mu.Unlock()
	if notify != nil {
		select {
		case notify <- struct{}{}:
		default:
		}
	}
}

// Close ends the session's view. The tracker is not used afterwards.
func (st *SessionTracker) Close() {
	t := st.mbox
	t.mu.Lock()
	delete(t.sessions, st)
	t.mu.Unlock()
	st.mu.Lock()
	st.closed = true
	st.q = nil
	st.expunges = 0
	st.mu.Unlock()
}

// Pending reports whether updates wait for the client.
func (st *SessionTracker) Pending() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.q) > 0
}

// NumMessages is the number of messages the client knows of: the
// highest sequence number ("*") in its commands.
func (st *SessionTracker) NumMessages() uint32 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.known
}

// updateSink is where Poll writes: the UpdateWriter, or a test's recorder.
type updateSink interface {
	WriteExpunge(seq uint32) error
	WriteVanished(uids imap.UIDSet, earlier bool) error
	WriteNumMessages(n uint32) error
	WriteMailboxFlags(flags, permanent []imap.Flag) error
	WriteMessageFlags(seq uint32, uid imap.UID, flags []imap.Flag, modSeq uint64) error
}

// Poll writes the pending updates. With allowExpunge false (FETCH, STORE
// and SEARCH by sequence number) it stops before the first expunge: what
// follows waits for a later Poll, so that the order stays.
func (st *SessionTracker) Poll(w *UpdateWriter, allowExpunge bool) error {
	qresync, condstore := w.modes()
	return st.poll(w, allowExpunge, qresync, condstore)
}

// modes says whether the connection has QRESYNC and CONDSTORE enabled.
func (w *UpdateWriter) modes() (qresync, condstore bool) {
	if w == nil || w.c == nil {
		return false, false
	}
	qresync = w.c.Enabled(imap.CapQResync)
	return qresync, qresync || w.c.Enabled(imap.CapCondStore)
}

func (st *SessionTracker) poll(w updateSink, allowExpunge, qresync, condstore bool) error {
	st.mu.Lock()
	n := len(st.q)
	if !allowExpunge && st.expunges > 0 {
		for i, u := range st.q {
			if u.kind == updExpunge {
				n = i
				break
			}
		}
	}
	if n == 0 {
		st.mu.Unlock()
		return nil
	}
	ups := st.q[:n:n]
	rest := st.q[n:]
	if len(rest) == 0 {
		st.q = nil
	} else {
		st.q = append([]update(nil), rest...)
	}
	// The client's count changes as if it were told now; a failed write
	// ends the connection anyway.
	for _, u := range ups {
		switch u.kind {
		case updExpunge:
			st.expunges--
			st.known--
		case updExists:
			st.known = u.num
		}
	}
	recent := st.recent
	st.mu.Unlock()

	for i := 0; i < len(ups); i++ {
		u := &ups[i]
		var err error
		switch u.kind {
		case updExpunge:
			if !qresync {
				err = w.WriteExpunge(u.seq)
				break
			}
			// One VANISHED for a run of expunges.
			var uids imap.UIDSet
			uids.AddNum(u.uid)
			for i+1 < len(ups) && ups[i+1].kind == updExpunge {
				i++
				uids.AddNum(ups[i].uid)
			}
			err = w.WriteVanished(uids, false)
		case updExists:
			err = w.WriteNumMessages(u.num)
		case updMailboxFlags:
			err = w.WriteMailboxFlags(u.flags, u.permanent)
		case updMessageFlags:
			var modSeq uint64
			if condstore {
				modSeq = u.modSeq
			}
			flags := u.flags
			if recent != nil && recent(u.uid) {
				// The queued list is every session's: a copy.
				flags = append(flags[:len(flags):len(flags)], imap.Flag(`\Recent`))
			}
			err = w.WriteMessageFlags(u.seq, u.uid, flags, modSeq)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Idle writes updates as they are queued, those already pending first,
// until stop is closed. One Idle at a time.
func (st *SessionTracker) Idle(w *UpdateWriter, stop <-chan struct{}) error {
	qresync, condstore := w.modes()
	return st.idleModes(w, stop, qresync, condstore)
}

func (st *SessionTracker) idle(w updateSink, stop <-chan struct{}) error {
	return st.idleModes(w, stop, false, false)
}

func (st *SessionTracker) idleModes(w updateSink, stop <-chan struct{}, qresync, condstore bool) error {
	notify := make(chan struct{}, 1)
	st.mu.Lock()
	if st.notify != nil {
		st.mu.Unlock()
		return fmt.Errorf("imapproto: SessionTracker.Idle called twice at once")
	}
	st.notify = notify
	st.mu.Unlock()
	defer func() {
		st.mu.Lock()
		st.notify = nil
		st.mu.Unlock()
	}()
	for {
		if err := st.poll(w, true, qresync, condstore); err != nil {
			return err
		}
		select {
		case <-notify:
		case <-stop:
			return nil
		}
	}
}

// DecodeSeqNum turns the client's sequence number into the server's: 0
// when the message is expunged (the client has not been told yet) or the
// client does not know that number.
func (st *SessionTracker) DecodeSeqNum(seq uint32) uint32 {
	st.mu.Lock()
	defer st.mu.Unlock()
	if seq == 0 || seq > st.known {
		return 0
	}
	if st.expunges == 0 {
		return seq
	}
	for i := range st.q {
		u := &st.q[i]
		if u.kind != updExpunge {
			continue
		}
		switch {
		case seq == u.seq:
			return 0
		case seq > u.seq:
			seq--
		}
	}
	return seq
}

// ExpungedUID returns the UID of the message the client numbers seq when
// it was expunged and the client has not been told yet (so DecodeSeqNum
// gives 0 for it); 0 otherwise. A server may still answer a FETCH of such
// a message (RFC 2180 §4.1.1).
func (st *SessionTracker) ExpungedUID(seq uint32) imap.UID {
	st.mu.Lock()
	defer st.mu.Unlock()
	if seq == 0 || seq > st.known || st.expunges == 0 {
		return 0
	}
	for i := range st.q {
		u := &st.q[i]
		if u.kind != updExpunge {
			continue
		}
		switch {
		case seq == u.seq:
			return u.uid
		case seq > u.seq:
			seq--
		}
	}
	return 0
}

// HasPendingExpunges says whether expunges wait to be told to the client.
func (st *SessionTracker) HasPendingExpunges() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.expunges > 0
}

// ExpungedSeq is ExpungedUID's inverse: the sequence number the client
// still has for the message uid when it was expunged and the client has
// not been told yet; 0 otherwise. UID FETCH answers such a message as
// FETCH does (RFC 2180 §4.1.1).
func (st *SessionTracker) ExpungedSeq(uid imap.UID) uint32 {
	st.mu.Lock()
	defer st.mu.Unlock()
	if uid == 0 || st.expunges == 0 {
		return 0
	}
	// Each queued expunge numbers its message as the list stood after
	// the expunges queued before it; undo those, latest first.
	for j := range st.q {
		u := &st.q[j]
		if u.kind != updExpunge || u.uid != uid {
			continue
		}
		seq := u.seq
		for i := j - 1; i >= 0; i-- {
			if p := &st.q[i]; p.kind == updExpunge && seq >= p.seq {
				seq++
			}
		}
		if seq > st.known {
			return 0
		}
		return seq
	}
	return 0
}

// EncodeSeqNum turns the server's sequence number into the client's: 0
// when the client does not know the message yet (EXISTS not sent) or
// seq is beyond the mailbox.
func (st *SessionTracker) EncodeSeqNum(seq uint32) uint32 {
	// Both locks, as queue takes them: the count and the queue agree.
	t := st.mbox
	t.mu.Lock()
	defer t.mu.Unlock()
	st.mu.Lock()
	defer st.mu.Unlock()
	if seq == 0 || seq > t.num {
		return 0
	}
	if len(st.q) == 0 {
		return seq
	}
	// Walk back from now to what the client knows: before an expunge at
	// e, the messages from e on were one further; before an EXISTS, the
	// messages beyond its old count did not exist.
	for i := len(st.q) - 1; i >= 0; i-- {
		u := &st.q[i]
		switch u.kind {
		case updExpunge:
			if seq >= u.seq {
				seq++
			}
		case updExists:
			if seq > u.prev {
				return 0
			}
		}
	}
	return seq
}
