package imapd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/bitmask-go/bitmask/internal/mailstore"
	"github.com/emersion/go-imap/v2"

	"github.com/bitmask-go/bitmask/internal/imapproto"
)

// delim is the hierarchy delimiter of mailbox names.
const delim = '/'

// session is one client connection. The protocol layer (imapproto) calls
// its methods one command at a time (Idle runs alongside only the read of
// DONE), and recovers their panics.
type session struct {
	srv    *Server
	conn   *imapproto.Conn
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	ended  func()

	user  string
	store Mailstore
	acct  *account
	view  *view // selected mailbox, or nil

	prefetched map[string][]byte // metas read ahead by the FETCH in progress

	byeOnce   sync.Once
	closeOnce sync.Once
}

var _ imapproto.Session = (*session)(nil)

func (s *Server) newSession(c *imapproto.Conn, ended func()) *session {
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
		// Not the user name: it is the account's address, or whatever
		// the client typed there (a password, by mistake).
		s.log.Info("imapd: login failed")
		return errAuthFailed
	}
	s.user, s.store = username, st
	s.acct = s.srv.acquireAccount(st)
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
	errAuthFailed = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "Authentication failed"}
	errReadOnly   = &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Mailbox is read-only (EXAMINE)"}
	errExists     = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "Mailbox already exists"}
	errBadName    = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Invalid mailbox name"}
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

func (s *session) Rename(oldName, newName string) error {
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

func (s *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	info, err := s.store.Mailbox(normalizeName(name))
	if err != nil {
		return nil, s.storeErr("STATUS", err, imap.ResponseCodeNonExistent)
	}
	return s.status(info, options)
}

// status fills the items STATUS asked for (the writer writes what is
// set).
func (s *session) status(info mailstore.MailboxInfo, options *imap.StatusOptions) (*imap.StatusData, error) {
	data := &imap.StatusData{Mailbox: info.Name}
	num, unseen, recent, limit := info.Messages, info.Unseen, info.Recent, uint32(maxAppendSize)
	if options.NumMessages {
		data.NumMessages = &num
	}
	if options.NumUnseen {
		data.NumUnseen = &unseen
	}
	if options.NumRecent {
		data.NumRecent = &recent
	}
	if options.UIDNext {
		data.UIDNext = imap.UID(info.UIDNext)
	}
	if options.UIDValidity {
		data.UIDValidity = info.UIDValidity
	}
	if options.AppendLimit {
		data.AppendLimit = &limit
	}
	if options.HighestModSeq {
		data.HighestModSeq = max(info.HighestModSeq, 1)
	}
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
		if options.NumDeleted {
			data.NumDeleted = &deleted
		}
		if options.Size {
			data.Size = &size
		}
		if options.DeletedStorage {
			data.DeletedStorage = &deletedSize
		}
	}
	return data, nil
}

// Append stores one message, or several at once (MULTIAPPEND, RFC 3502:
// one batch of the store, all or none).
func (s *session) Append(mailbox string, msgs []imapproto.AppendMessage) (*imapproto.AppendData, error) {
	name := normalizeName(mailbox)
	batch := make([]mailstore.NewMessage, len(msgs))
	for i, m := range msgs {
		if len(m.Literal) > maxAppendSize {
			return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig, Text: "Message larger than 64 MiB"}
		}
		flags, err := storeFlags(m.Flags)
		if err != nil {
			return nil, err
		}
		batch[i] = mailstore.NewMessage{Raw: m.Literal, Flags: flags, Date: m.Time}
	}
	var (
		added       []mailstore.Message
		uidValidity uint32
	)
	if len(batch) == 1 {
		msg, uv, err := s.store.Append(s.opCtx(), name, batch[0].Raw, batch[0].Flags, batch[0].Date)
		if err != nil {
			return nil, s.storeErr("APPEND", err, imap.ResponseCodeTryCreate)
		}
		added, uidValidity = []mailstore.Message{msg}, uv
	} else {
		var err error
		if added, err = s.store.AppendBatch(s.opCtx(), name, batch); err != nil {
			return nil, s.storeErr("APPEND", err, imap.ResponseCodeTryCreate)
		}
		info, err := s.store.Mailbox(name)
		if err != nil {
			return nil, s.storeErr("APPEND", err, imap.ResponseCodeTryCreate)
		}
		uidValidity = info.UIDValidity
	}
	data := &imapproto.AppendData{UIDValidity: uidValidity}
	var top uint32
	for _, m := range added {
		data.UIDs.AddNum(imap.UID(m.UID))
		top = max(top, m.UID)
	}
	if s.view != nil && s.view.hub.name == name && top > 0 {
		// So that EXISTS precedes the tagged OK (RFC 9051 §6.3.12).
		s.view.hub.waitAdded(s.ctx, top)
	}
	return data, nil
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

func (s *session) Select(name string, options *imapproto.SelectOptions) (*imapproto.SelectData, error) {
	s.unselect()
	v, data, err := s.acct.openView(s, normalizeName(name), options)
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

func (s *session) Poll(w *imapproto.UpdateWriter, allowExpunge bool) error {
	if s.view == nil {
		return nil
	}
	if err := s.view.tracker.Poll(w, allowExpunge); err != nil {
		return fmt.Errorf("imapd: writing mailbox updates: %w", err)
	}
	return nil
}

// Idle writes updates as the hub queues them.
func (s *session) Idle(w *imapproto.UpdateWriter, stop <-chan struct{}) error {
	v := s.view
	if v == nil {
		<-stop
		return nil
	}
	if err := v.tracker.Idle(w, stop); err != nil {
		return fmt.Errorf("imapd: writing mailbox updates: %w", err)
	}
	return nil
}
