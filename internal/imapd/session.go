package imapd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/bitmask-go/bitmask/internal/mailstore"
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// delim is the hierarchy delimiter of mailbox names.
const delim = '/'

// session is one client connection. go-imap calls its methods one command
// at a time (Idle runs alongside only the read of DONE).
type session struct {
	srv    *Server
	conn   *imapserver.Conn
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	ended  func()

	user  string
	store Mailstore
	acct  *account
	view  *view // selected mailbox, or nil

	prefetched map[string][]byte               // metas read ahead by the FETCH in progress
	responding *imapserver.FetchResponseWriter // a FETCH response being written (recover.go)

	byeOnce   sync.Once
	closeOnce sync.Once
}

var (
	_ imapserver.SessionIMAP4rev2       = (*session)(nil)
	_ imapserver.SessionUnauthenticate  = (*session)(nil)
	_ imapserver.SessionAppendLimit     = (*session)(nil)
	_ imapserver.SessionNamespace       = (*session)(nil)
	_ imapserver.SessionMove            = (*session)(nil)
	_ imapserver.Session                = (*session)(nil)
	_ interface{ AppendLimit() uint32 } = (*session)(nil)
)

func (s *Server) newSession(c *imapserver.Conn, ended func()) *session {
	ctx, cancel := context.WithCancel(context.Background())
	log := s.log
	if a := c.NetConn().RemoteAddr(); a != nil {
		log = log.With("remote", a.String())
	}
	return &session{srv: s, conn: c, log: log, ctx: ctx, cancel: cancel, ended: ended}
}

func (s *session) Close() error {
	s.closeOnce.Do(func() {
		s.logout()
		s.cancel()
		s.ended()
	})
	return nil
}

// bye ends the connection from outside the command loop.
func (s *session) bye(text string) {
	s.byeOnce.Do(func() { _ = s.conn.Bye(text) })
}

func (s *session) Login(username, password string) error {
	st, err := s.srv.auth.Check(username, password)
	if err != nil || st == nil {
		s.log.Info("imapd: login failed", "user", username)
		return imapserver.ErrAuthFailed
	}
	s.user, s.store = username, st
	s.acct = s.srv.acquireAccount(st)
	s.log = s.log.With("user", username)
	s.log.Debug("imapd: logged in")
	return nil
}

func (s *session) Unauthenticate() error {
	s.logout()
	return nil
}

func (s *session) logout() {
	s.unselect()
	if s.acct != nil {
		s.srv.releaseAccount(s.acct)
	}
	s.acct, s.store, s.user = nil, nil, ""
}

func (s *session) AppendLimit() uint32 { return maxAppendSize }

func (s *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: delim}}}, nil
}

// opCtx is the context of a store call made by this session.
func (s *session) opCtx() context.Context {
	var origin any = s
	if s.view != nil {
		origin = s.view
	}
	return withOrigin(s.ctx, origin)
}

// normalizeName maps INBOX in any case to INBOX (RFC 9051 §5.1).
func normalizeName(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	if head, rest, ok := strings.Cut(name, string(delim)); ok && strings.EqualFold(head, "INBOX") {
		return "INBOX" + string(delim) + rest
	}
	return name
}

// validName says whether name can be a mailbox name.
func validName(name string) bool {
	if name == "" || len(name) > 512 || name[0] == delim || strings.Contains(name, "//") {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '*' || r == '%' {
			return false
		}
	}
	return true
}

// Errors shown to clients.
func noMailbox(code imap.ResponseCode) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: "No such mailbox"}
}

var (
	errReadOnly = &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Mailbox is read-only (EXAMINE)"}
	errExists   = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "Mailbox already exists"}
	errBadName  = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Invalid mailbox name"}
)

// storeErr turns a store error into what the client sees; details go to
// the log only.
func (s *session) storeErr(op string, err error, missing imap.ResponseCode) error {
	var imapErr *imap.Error
	switch {
	case errors.As(err, &imapErr):
		return err
	case errors.Is(err, mailstore.ErrNoMailbox):
		return noMailbox(missing)
	case errors.Is(err, mailstore.ErrExists):
		return errExists
	case errors.Is(err, mailstore.ErrNoMessage):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "No such message"}
	}
	s.log.Warn("imapd: "+op+" failed", "err", err)
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeServerBug, Text: op + " failed (see the bitmaskd log)"}
}

func (s *session) Create(name string, options *imap.CreateOptions) error {
	if len(options.SpecialUse) > 0 {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: "USEATTR", Text: "Special-use attributes cannot be set"}
	}
	name = normalizeName(strings.TrimRight(name, string(delim)))
	if name == "INBOX" {
		return errExists
	}
	if !validName(name) {
		return errBadName
	}
	if err := s.store.CreateMailbox(s.opCtx(), name); err != nil {
		return s.storeErr("CREATE", err, imap.ResponseCodeNonExistent)
	}
	return nil
}

// checkMutable refuses to delete or rename the mailboxes that always
// exist.
func (s *session) checkMutable(name string) error {
	if name == "INBOX" {
		return nil
	}
	info, err := s.store.Mailbox(name)
	if err != nil {
		return s.storeErr("mailbox lookup", err, imap.ResponseCodeNonExistent)
	}
	if info.Special != "" {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Special-use mailboxes cannot be deleted or renamed"}
	}
	return nil
}

func (s *session) Delete(name string) error {
	name = normalizeName(name)
	if name == "INBOX" {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "INBOX cannot be deleted"}
	}
	if err := s.checkMutable(name); err != nil {
		return err
	}
	if err := s.store.DeleteMailbox(s.opCtx(), name); err != nil {
		return s.storeErr("DELETE", err, imap.ResponseCodeNonExistent)
	}
	return nil
}

func (s *session) Rename(oldName, newName string, options *imap.RenameOptions) error {
	oldName = normalizeName(oldName)
	newName = normalizeName(strings.TrimRight(newName, string(delim)))
	if !validName(newName) {
		return errBadName
	}
	if newName == "INBOX" {
		return errExists
	}
	if newName == oldName || strings.HasPrefix(newName, oldName+string(delim)) {
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Cannot rename a mailbox into itself"}
	}
	if err := s.checkMutable(oldName); err != nil {
		return err
	}
	if err := s.store.RenameMailbox(s.opCtx(), oldName, newName); err != nil {
		return s.storeErr("RENAME", err, imap.ResponseCodeNonExistent)
	}
	return nil
}

func (s *session) Subscribe(name string) error   { return s.subscribe(name, true) }
func (s *session) Unsubscribe(name string) error { return s.subscribe(name, false) }

func (s *session) subscribe(name string, on bool) error {
	if err := s.store.Subscribe(s.opCtx(), normalizeName(name), on); err != nil {
		return s.storeErr("SUBSCRIBE", err, imap.ResponseCodeNonExistent)
	}
	return nil
}

// List implements LIST, LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819),
// SPECIAL-USE (RFC 6154) and LSUB. Special-use attributes and
// \HasChildren/\HasNoChildren are always returned; a parent that does not
// exist but has children is listed as \Noselect.
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 {
		// LIST "" "": the hierarchy delimiter and root.
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: delim})
	}
	boxes := s.store.Mailboxes()
	byName := make(map[string]*mailstore.MailboxInfo, len(boxes))
	for i := range boxes {
		byName[boxes[i].Name] = &boxes[i]
	}
	// Every name with its implied parents; which names have children, and
	// which have subscribed descendants.
	all := map[string]bool{}
	hasChildren := map[string]bool{}
	subChildren := map[string]bool{}
	for _, b := range boxes {
		all[b.Name] = true
		for n := b.Name; ; {
			i := strings.LastIndexByte(n, delim)
			if i <= 0 {
				break
			}
			n = n[:i]
			all[n] = true
			hasChildren[n] = true
			if b.Subscribed {
				subChildren[n] = true
			}
		}
	}
	names := make([]string, 0, len(all))
	for n := range all {
		names = append(names, n)
	}
	sort.Strings(names)

	for _, name := range names {
		match := false
		for _, p := range patterns {
			if imapserver.MatchList(name, delim, ref, p) || (name == "INBOX" && imapserver.MatchList(name, delim, ref, normalizeName(p))) {
				match = true
				break
			}
		}
		if !match {
			continue
		}
		info := byName[name]
		subscribed := info != nil && info.Subscribed
		data := &imap.ListData{Mailbox: name, Delim: delim}
		if options.SelectSubscribed && !subscribed {
			if !options.SelectRecursiveMatch || !subChildren[name] {
				continue
			}
			data.ChildInfo = &imap.ListDataChildInfo{Subscribed: true}
		}
		if options.SelectSpecialUse && (info == nil || info.Special == "") {
			continue
		}
		if info == nil {
			data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect)
		}
		if hasChildren[name] {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
		} else {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if subscribed && (options.ReturnSubscribed || options.SelectSubscribed) {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if info != nil && info.Special != "" {
			data.Attrs = append(data.Attrs, imap.MailboxAttr(info.Special))
		}
		if options.ReturnStatus != nil && info != nil {
			st, err := s.status(*info, options.ReturnStatus)
			if err != nil {
				return err
			}
			data.Status = st
		}
		if err := w.WriteList(data); err != nil {
			return fmt.Errorf("imapd: writing a LIST response: %w", err)
		}
	}
	return nil
}

func (s *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	info, err := s.store.Mailbox(normalizeName(name))
	if err != nil {
		return nil, s.storeErr("STATUS", err, imap.ResponseCodeNonExistent)
	}
	return s.status(info, options)
}

// status fills every item STATUS asked for (go-imap writes them all).
func (s *session) status(info mailstore.MailboxInfo, options *imap.StatusOptions) (*imap.StatusData, error) {
	data := &imap.StatusData{Mailbox: info.Name, UIDNext: imap.UID(info.UIDNext), UIDValidity: info.UIDValidity}
	num, unseen, zero := info.Messages, info.Unseen, uint32(0)
	data.NumMessages, data.NumUnseen, data.NumRecent = &num, &unseen, &zero
	limit := uint32(maxAppendSize)
	data.AppendLimit = &limit
	if options.NumDeleted || options.Size || options.DeletedStorage {
		msgs, err := s.store.Messages(info.Name)
		if err != nil {
			return nil, s.storeErr("STATUS", err, imap.ResponseCodeNonExistent)
		}
		var deleted uint32
		var size, deletedSize int64
		for _, m := range msgs {
			size += m.Size
			if hasFlag(m.Flags, `\Deleted`) {
				deleted++
				deletedSize += m.Size
			}
		}
		data.NumDeleted, data.Size, data.DeletedStorage = &deleted, &size, &deletedSize
	}
	return data, nil
}

func (s *session) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	if r.Size() > maxAppendSize {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig, Text: "Message larger than 64 MiB"}
	}
	raw := make([]byte, r.Size())
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, fmt.Errorf("imapd: reading the APPEND literal: %w", err)
	}
	flags, err := storeFlags(options.Flags)
	if err != nil {
		return nil, err
	}
	name := normalizeName(mailbox)
	msg, uidValidity, err := s.store.Append(s.opCtx(), name, raw, flags, options.Time)
	if err != nil {
		return nil, s.storeErr("APPEND", err, imap.ResponseCodeTryCreate)
	}
	if s.view != nil && s.view.hub.name == name {
		// So that EXISTS precedes the tagged OK (RFC 9051 §6.3.12).
		s.view.hub.waitAdded(s.ctx, msg.UID)
	}
	return &imap.AppendData{UID: imap.UID(msg.UID), UIDValidity: uidValidity}, nil
}

// storeFlags checks flags a client asks to set: \Recent cannot be set
// (and is dropped), other backslash flags must be system flags.
func storeFlags(flags []imap.Flag) ([]string, error) {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		s := string(f)
		if strings.HasPrefix(s, `\`) {
			known := false
			for _, sys := range systemFlags {
				if strings.EqualFold(s, string(sys)) {
					s, known = string(sys), true
				}
			}
			if strings.EqualFold(s, `\Recent`) {
				continue
			}
			if !known {
				return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: "Unknown system flag " + s}
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func (s *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	s.unselect()
	v, data, err := s.acct.openView(s, normalizeName(name), options.ReadOnly)
	if err != nil {
		return nil, s.storeErr("SELECT", err, imap.ResponseCodeNonExistent)
	}
	s.view = v
	return data, nil
}

func (s *session) Unselect() error {
	s.unselect()
	return nil
}

func (s *session) unselect() {
	if s.view != nil {
		s.acct.release(s.view)
		s.view = nil
	}
}

func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	if s.view == nil {
		return nil
	}
	if err := s.view.tracker.Poll(w, allowExpunge); err != nil {
		return fmt.Errorf("imapd: writing mailbox updates: %w", err)
	}
	return nil
}

// Idle writes updates as the hub queues them. (go-imap's
// SessionTracker.Idle does not look at updates queued before it starts,
// between IDLE's continuation and its own start, so those would wait for
// the next command.)
func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	v := s.view
	if v == nil {
		<-stop
		return nil
	}
	for {
		if err := v.tracker.Poll(w, true); err != nil {
			return fmt.Errorf("imapd: writing mailbox updates: %w", err)
		}
		select {
		case <-v.wake:
		case <-stop:
			return nil
		}
	}
}
