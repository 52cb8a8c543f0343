package imapproto

// A small in-memory Session for the connection tests: one account
// (alice, password "pw"), mailboxes with messages, a tracker per
// selected mailbox. Enough of each command to see the protocol work, not
// a model of a real store.

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
)

type memMsg struct {
	uid    imap.UID
	flags  []imap.Flag
	data   []byte
	date   time.Time
	modSeq uint64
}

type memBox struct {
	name        string
	uidValidity uint32
	uidNext     imap.UID
	modSeq      uint64
	msgs        []*memMsg
	subscribed  bool
	tracker     *MailboxTracker
}

type memBackend struct {
	mu    sync.Mutex
	boxes map[string]*memBox
	// appended counts messages appended.
	appended int
	// closed gets a value for every session closed.
	closed chan struct{}

	hookMu sync.Mutex
	// panicOn makes the named operation panic ("CREATE", "IDLE", "POLL",
	// "FETCH-MID": in the middle of a FETCH response).
	panicOn string
	// midFetch, when set, runs in the middle of each FETCH response.
	midFetch func()
}

func (b *memBackend) setPanic(op string) {
	b.hookMu.Lock()
	defer b.hookMu.Unlock()
	b.panicOn = op
}

func (b *memBackend) panics(op string) bool {
	b.hookMu.Lock()
	defer b.hookMu.Unlock()
	return b.panicOn == op
}

func (b *memBackend) setMidFetch(f func()) {
	b.hookMu.Lock()
	defer b.hookMu.Unlock()
	b.midFetch = f
}

func (b *memBackend) getMidFetch() func() {
	b.hookMu.Lock()
	defer b.hookMu.Unlock()
	return b.midFetch
}

func newMemBackend() *memBackend {
	b := &memBackend{boxes: map[string]*memBox{}, closed: make(chan struct{}, 100)}
	b.boxes["INBOX"] = &memBox{name: "INBOX", uidValidity: 7, uidNext: 1, subscribed: true, tracker: NewMailboxTracker(0)}
	return b
}

type memSession struct {
	b      *memBackend
	conn   *Conn
	user   string
	box    *memBox
	st     *SessionTracker
	ro     bool
	closed bool
}

var errNoBox = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: "No such mailbox"}

func (s *memSession) Close() error {
	s.Unselect()
	s.closed = true
	s.b.closed <- struct{}{}
	return nil
}

func (s *memSession) Login(username, password string) error {
	if username != "alice" || password != "pw" {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "Invalid credentials"}
	}
	s.user = username
	return nil
}

func (s *memSession) Unauthenticate() error {
	s.Unselect()
	s.user = ""
	return nil
}

func (s *memSession) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: '/'}}}, nil
}

func (s *memSession) Select(mailbox string, options *SelectOptions) (*SelectData, error) {
	s.Unselect()
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	box := s.b.boxes[mailbox]
	if box == nil {
		return nil, errNoBox
	}
	s.box, s.ro = box, options.ReadOnly
	s.st = box.tracker.NewSession()
	data := &SelectData{
		Flags:          []imap.Flag{imap.FlagSeen, imap.FlagDeleted, imap.FlagFlagged},
		PermanentFlags: []imap.Flag{imap.FlagSeen, imap.FlagDeleted, imap.FlagFlagged, imap.FlagWildcard},
		NumMessages:    uint32(len(box.msgs)),
		UIDNext:        box.uidNext,
		UIDValidity:    box.uidValidity,
		HighestModSeq:  max(box.modSeq, 1),
	}
	if q := options.QResync; q != nil && q.UIDValidity == box.uidValidity {
		data.After = func(w *UpdateWriter) error {
			// No expunge history: every known UID not here is gone.
			var gone imap.UIDSet
			for _, r := range q.KnownUIDs {
				for u := r.Start; u <= r.Stop && u != 0; u++ {
					if !slices.ContainsFunc(box.msgs, func(m *memMsg) bool { return m.uid == u }) {
						gone.AddNum(u)
					}
					if u == r.Stop {
						break
					}
				}
			}
			if len(gone) > 0 {
				return w.WriteVanished(gone, true)
			}
			return nil
		}
	}
	return data, nil
}

func (s *memSession) Create(mailbox string, options *imap.CreateOptions) error {
	if s.b.panics("CREATE") {
		panic("secret text in a panic")
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.b.boxes[mailbox] != nil {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "Exists"}
	}
	s.b.boxes[mailbox] = &memBox{name: mailbox, uidValidity: 9, uidNext: 1, tracker: NewMailboxTracker(0)}
	return nil
}

func (s *memSession) Delete(mailbox string) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.b.boxes[mailbox] == nil || mailbox == "INBOX" {
		return errNoBox
	}
	delete(s.b.boxes, mailbox)
	return nil
}

func (s *memSession) Rename(mailbox, newName string) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	box := s.b.boxes[mailbox]
	if box == nil {
		return errNoBox
	}
	delete(s.b.boxes, mailbox)
	box.name = newName
	s.b.boxes[newName] = box
	return nil
}

func (s *memSession) Subscribe(mailbox string) error   { return s.subscribe(mailbox, true) }
func (s *memSession) Unsubscribe(mailbox string) error { return s.subscribe(mailbox, false) }

func (s *memSession) subscribe(mailbox string, on bool) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	box := s.b.boxes[mailbox]
	if box == nil {
		return errNoBox
	}
	box.subscribed = on
	return nil
}

func (s *memSession) List(w *ListWriter, ref string, patterns []string, options *imap.ListOptions, lsub bool) error {
	s.b.mu.Lock()
	var names []string
	for n, box := range s.b.boxes {
		if options.SelectSubscribed && !box.subscribed {
			continue
		}
		for _, p := range patterns {
			if p == "*" || p == "%" || p == n {
				names = append(names, n)
				break
			}
		}
	}
	s.b.mu.Unlock()
	slices.Sort(names)
	for _, n := range names {
		if err := w.WriteList(&imap.ListData{Mailbox: n, Delim: '/', Attrs: []imap.MailboxAttr{imap.MailboxAttrHasNoChildren}}); err != nil {
			return err
		}
	}
	return nil
}

func (s *memSession) Status(mailbox string, options *imap.StatusOptions) (*imap.StatusData, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	box := s.b.boxes[mailbox]
	if box == nil {
		return nil, errNoBox
	}
	n := uint32(len(box.msgs))
	data := &imap.StatusData{Mailbox: mailbox, UIDNext: box.uidNext, UIDValidity: box.uidValidity}
	if options.NumMessages {
		data.NumMessages = &n
	}
	if options.HighestModSeq {
		data.HighestModSeq = max(box.modSeq, 1)
	}
	return data, nil
}

func (s *memSession) Append(mailbox string, msgs []AppendMessage) (*AppendData, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	box := s.b.boxes[mailbox]
	if box == nil {
		return nil, errNoBox
	}
	data := &AppendData{UIDValidity: box.uidValidity}
	for _, m := range msgs {
		box.modSeq++
		msg := &memMsg{uid: box.uidNext, flags: slices.Clone(m.Flags), data: slices.Clone(m.Literal), date: m.Time, modSeq: box.modSeq}
		box.uidNext++
		box.msgs = append(box.msgs, msg)
		data.UIDs.AddNum(msg.uid)
		s.b.appended++
	}
	box.tracker.QueueNumMessages(uint32(len(box.msgs)))
	return data, nil
}

func (s *memSession) Poll(w *UpdateWriter, allowExpunge bool) error {
	if s.b.panics("POLL") {
		panic("secret text in a panic")
	}
	if s.st == nil {
		return nil
	}
	return s.st.Poll(w, allowExpunge)
}

func (s *memSession) Idle(w *UpdateWriter, stop <-chan struct{}) error {
	if s.b.panics("IDLE") {
		panic("secret text in a panic")
	}
	if s.st == nil {
		<-stop
		return nil
	}
	return s.st.Idle(w, stop)
}

func (s *memSession) Unselect() error {
	if s.st != nil {
		s.st.Close()
	}
	s.box, s.st = nil, nil
	return nil
}

// targets resolves a set to the messages it names (under b.mu): their
// server sequence numbers (from 1).
func (s *memSession) targets(kind NumKind, set imap.NumSet) []uint32 {
	var out []uint32
	n := uint32(len(s.box.msgs))
	switch set := set.(type) {
	case imap.SeqSet:
		for c := uint32(1); c <= s.st.NumMessages(); c++ {
			if set.Contains(c) || (c == s.st.NumMessages() && seqSetHasStar(set)) {
				if sn := s.st.DecodeSeqNum(c); sn != 0 && sn <= n {
					out = append(out, sn)
				}
			}
		}
	case imap.UIDSet:
		for i, m := range s.box.msgs {
			if set.Contains(m.uid) || (i == len(s.box.msgs)-1 && uidSetHasStar(set)) {
				out = append(out, uint32(i+1))
			}
		}
	}
	return out
}

func seqSetHasStar(set imap.SeqSet) bool {
	for _, r := range set {
		if r.Start == 0 || r.Stop == 0 {
			return true
		}
	}
	return false
}

func uidSetHasStar(set imap.UIDSet) bool {
	for _, r := range set {
		if r.Start == 0 || r.Stop == 0 {
			return true
		}
	}
	return false
}

func (s *memSession) Expunge(w *ExpungeWriter, uids *imap.UIDSet, close bool) error {
	if s.ro {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Read-only"}
	}
	s.b.mu.Lock()
	box := s.box
	for i := len(box.msgs) - 1; i >= 0; i-- {
		m := box.msgs[i]
		if !slices.Contains(m.flags, imap.FlagDeleted) || (uids != nil && !uids.Contains(m.uid)) {
			continue
		}
		box.msgs = slices.Delete(box.msgs, i, i+1)
		box.tracker.QueueExpunge(uint32(i+1), m.uid)
	}
	s.b.mu.Unlock()
	if close {
		return nil
	}
	return s.st.Poll(w, true)
}

func (s *memSession) Search(kind NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	data := &imap.SearchData{}
	var seqs imap.SeqSet
	var uids imap.UIDSet
	for i, m := range s.box.msgs {
		if len(criteria.Flag) > 0 && !slices.Contains(m.flags, criteria.Flag[0]) {
			continue
		}
		c := s.st.EncodeSeqNum(uint32(i + 1))
		if c == 0 {
			continue
		}
		seqs.AddNum(c)
		uids.AddNum(m.uid)
	}
	if kind == NumKindUID {
		data.All = uids
	} else {
		data.All = seqs
	}
	return data, nil
}

func (s *memSession) Fetch(w *FetchWriter, kind NumKind, numSet imap.NumSet, options *FetchOptions) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	for _, sn := range s.targets(kind, numSet) {
		m := s.box.msgs[sn-1]
		if options.ChangedSince != 0 && m.modSeq <= options.ChangedSince {
			continue
		}
		rw := w.CreateMessage(s.st.EncodeSeqNum(sn))
		if s.b.panics("FETCH-MID") {
			panic(errors.New("secret text in a panic"))
		}
		if f := s.b.getMidFetch(); f != nil {
			f()
		}
		if options.UID || kind == NumKindUID {
			rw.WriteUID(m.uid)
		}
		if options.Flags {
			rw.WriteFlags(m.flags)
		}
		if options.RFC822Size {
			rw.WriteRFC822Size(int64(len(m.data)))
		}
		if options.ModSeq || options.ChangedSince != 0 {
			rw.WriteModSeq(m.modSeq)
		}
		for _, sec := range options.BodySection {
			wc := rw.WriteBodySection(sec, int64(len(m.data)))
			if _, err := wc.Write(m.data); err != nil {
				return err
			}
			if err := wc.Close(); err != nil {
				return err
			}
		}
		if err := rw.Close(); err != nil {
			return err
		}
	}
	return nil
}

func (s *memSession) Store(w *FetchWriter, kind NumKind, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) (imap.NumSet, error) {
	if s.ro {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Read-only"}
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	var modified imap.UIDSet
	for _, sn := range s.targets(kind, numSet) {
		m := s.box.msgs[sn-1]
		if options.UnchangedSince != 0 && m.modSeq > options.UnchangedSince {
			modified.AddNum(m.uid)
			continue
		}
		switch flags.Op {
		case imap.StoreFlagsSet:
			m.flags = slices.Clone(flags.Flags)
		case imap.StoreFlagsAdd:
			for _, f := range flags.Flags {
				if !slices.Contains(m.flags, f) {
					m.flags = append(m.flags, f)
				}
			}
		case imap.StoreFlagsDel:
			m.flags = slices.DeleteFunc(m.flags, func(f imap.Flag) bool { return slices.Contains(flags.Flags, f) })
		}
		s.box.modSeq++
		m.modSeq = s.box.modSeq
		s.box.tracker.QueueMessageFlags(sn, m.uid, slices.Clone(m.flags), m.modSeq, s.st)
		if !flags.Silent {
			rw := w.CreateMessage(s.st.EncodeSeqNum(sn))
			if kind == NumKindUID {
				rw.WriteUID(m.uid)
			}
			rw.WriteFlags(m.flags)
			if s.conn.Enabled(imap.CapCondStore) {
				rw.WriteModSeq(m.modSeq)
			}
			if err := rw.Close(); err != nil {
				return nil, err
			}
		}
	}
	if len(modified) > 0 {
		return modified, nil
	}
	return nil, nil
}

func (s *memSession) Copy(kind NumKind, numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	to := s.b.boxes[dest]
	if to == nil {
		return nil, errNoBox
	}
	data := &imap.CopyData{UIDValidity: to.uidValidity}
	for _, sn := range s.targets(kind, numSet) {
		m := s.box.msgs[sn-1]
		to.modSeq++
		c := &memMsg{uid: to.uidNext, flags: slices.Clone(m.flags), data: m.data, modSeq: to.modSeq}
		to.uidNext++
		to.msgs = append(to.msgs, c)
		data.SourceUIDs.AddNum(m.uid)
		data.DestUIDs.AddNum(c.uid)
	}
	to.tracker.QueueNumMessages(uint32(len(to.msgs)))
	return data, nil
}

func (s *memSession) Move(w *MoveWriter, kind NumKind, numSet imap.NumSet, dest string) error {
	data, err := s.Copy(kind, numSet, dest)
	if err != nil {
		return err
	}
	if err := w.WriteCopyData(data); err != nil {
		return err
	}
	s.b.mu.Lock()
	box := s.box
	for i := len(box.msgs) - 1; i >= 0; i-- {
		if data.SourceUIDs.Contains(box.msgs[i].uid) {
			uid := box.msgs[i].uid
			box.msgs = slices.Delete(box.msgs, i, i+1)
			box.tracker.QueueExpunge(uint32(i+1), uid)
		}
	}
	s.b.mu.Unlock()
	return s.st.Poll(w, true)
}

// hasLine reports whether text has a line starting with prefix.
func hasLine(text, prefix string) bool {
	for _, l := range strings.Split(text, "\r\n") {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}
