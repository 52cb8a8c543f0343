package imapd

import (
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/bitmask-go/bitmask/internal/recovered"
)

// A panic in one command (a message the MIME code cannot take, a bug)
// ends that command, not bitmaskd nor the other sessions.
//
// go-imap v2.0.0-beta.8 recovers a panic per connection by itself: it
// logs it with its text and closes the connection without a word. Here
// every command of a session runs under guarded, which logs the panic
// without its text (internal/recovered) and answers:
//
//   - a tagged NO [SERVERBUG] when nothing of the command's response was
//     written: the session goes on (the panic unwound the command only;
//     the hub's state is changed under deferred unlocks or h.safely);
//   - an untagged BYE on the connection itself, which is then closed,
//     when a FETCH response was half written: go-imap's writer holds its
//     lock until the response ends, and the client could not parse what
//     came after it anyway.
//
// SEARCH matches messages on several goroutines, out of reach of this;
// it recovers per message itself (matchAll).

// errServerBug is what a command that panicked answers.
var errServerBug = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeServerBug, Text: "Internal error (see the bitmaskd log)"}

// guarded is a session whose commands recover their panics.
type guarded struct{ s *session }

var (
	_ imapserver.SessionIMAP4rev2      = (*guarded)(nil)
	_ imapserver.SessionUnauthenticate = (*guarded)(nil)
	_ imapserver.SessionAppendLimit    = (*guarded)(nil)
)

// recover, deferred by each command, turns a panic into the command's
// answer (see above).
func (g guarded) recover(cmd string, errp *error) {
	v := recover()
	if v == nil {
		return
	}
	s := g.s
	p := recovered.New(v)
	// The server's log, not the session's: that one names the account.
	s.srv.log.Error("imapd: "+cmd+" panicked", p.LogAttrs()...)
	s.prefetched = nil
	*errp = errServerBug
	if rw := s.responding; rw != nil {
		s.responding = nil
		s.cutShort(rw)
	}
}

// cutShort ends the connection in the middle of a FETCH response: BYE on
// a line of its own, written on the connection itself, then close; then
// the response writer is ended (its writes fail) so that go-imap's lock is
// free for whatever else wants to write (a BYE from the hub, the tagged
// answer, which fail as well).
func (s *session) cutShort(rw *imapserver.FetchResponseWriter) {
	nc := s.conn.NetConn()
	_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = nc.Write([]byte("\r\n* BYE Internal error (see the bitmaskd log)\r\n"))
	_ = nc.Close()
	if p := recovered.Do(func() { _ = rw.Close() }); p != nil {
		// The writer is stuck: go-imap's own recovery ends the
		// connection (its lock stays held, on a closed connection).
		panic(p)
	}
}

// createMessage starts a FETCH response and notes it as in progress;
// endMessage ends it.
func (s *session) createMessage(w *imapserver.FetchWriter, seq uint32) *imapserver.FetchResponseWriter {
	rw := w.CreateMessage(seq)
	s.responding = rw
	return rw
}

func (s *session) endMessage(rw *imapserver.FetchResponseWriter) error {
	s.responding = nil
	if err := rw.Close(); err != nil {
		return fmt.Errorf("imapd: writing a FETCH response: %w", err)
	}
	return nil
}

func (g guarded) Close() error { return g.s.Close() }

func (g guarded) AppendLimit() uint32 { return g.s.AppendLimit() }

func (g guarded) Login(username, password string) (err error) {
	defer g.recover("LOGIN", &err)
	return g.s.Login(username, password)
}

func (g guarded) Unauthenticate() (err error) {
	defer g.recover("UNAUTHENTICATE", &err)
	return g.s.Unauthenticate()
}

func (g guarded) Namespace() (_ *imap.NamespaceData, err error) {
	defer g.recover("NAMESPACE", &err)
	return g.s.Namespace()
}

func (g guarded) Select(mailbox string, options *imap.SelectOptions) (_ *imap.SelectData, err error) {
	defer g.recover("SELECT", &err)
	return g.s.Select(mailbox, options)
}

func (g guarded) Create(mailbox string, options *imap.CreateOptions) (err error) {
	defer g.recover("CREATE", &err)
	return g.s.Create(mailbox, options)
}

func (g guarded) Delete(mailbox string) (err error) {
	defer g.recover("DELETE", &err)
	return g.s.Delete(mailbox)
}

func (g guarded) Rename(mailbox, newName string, options *imap.RenameOptions) (err error) {
	defer g.recover("RENAME", &err)
	return g.s.Rename(mailbox, newName, options)
}

func (g guarded) Subscribe(mailbox string) (err error) {
	defer g.recover("SUBSCRIBE", &err)
	return g.s.Subscribe(mailbox)
}

func (g guarded) Unsubscribe(mailbox string) (err error) {
	defer g.recover("UNSUBSCRIBE", &err)
	return g.s.Unsubscribe(mailbox)
}

func (g guarded) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) (err error) {
	defer g.recover("LIST", &err)
	return g.s.List(w, ref, patterns, options)
}

func (g guarded) Status(mailbox string, options *imap.StatusOptions) (_ *imap.StatusData, err error) {
	defer g.recover("STATUS", &err)
	return g.s.Status(mailbox, options)
}

func (g guarded) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (_ *imap.AppendData, err error) {
	defer g.recover("APPEND", &err)
	return g.s.Append(mailbox, r, options)
}

func (g guarded) Poll(w *imapserver.UpdateWriter, allowExpunge bool) (err error) {
	defer g.recover("poll", &err)
	return g.s.Poll(w, allowExpunge)
}

func (g guarded) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) (err error) {
	defer g.recover("IDLE", &err)
	return g.s.Idle(w, stop)
}

func (g guarded) Unselect() (err error) {
	defer g.recover("UNSELECT", &err)
	return g.s.Unselect()
}

func (g guarded) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) (err error) {
	defer g.recover("EXPUNGE", &err)
	return g.s.Expunge(w, uids)
}

func (g guarded) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (_ *imap.SearchData, err error) {
	defer g.recover("SEARCH", &err)
	return g.s.Search(kind, criteria, options)
}

func (g guarded) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) (err error) {
	defer g.recover("FETCH", &err)
	return g.s.Fetch(w, numSet, options)
}

func (g guarded) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) (err error) {
	defer g.recover("STORE", &err)
	return g.s.Store(w, numSet, flags, options)
}

func (g guarded) Copy(numSet imap.NumSet, dest string) (_ *imap.CopyData, err error) {
	defer g.recover("COPY", &err)
	return g.s.Copy(numSet, dest)
}

func (g guarded) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) (err error) {
	defer g.recover("MOVE", &err)
	return g.s.Move(w, numSet, dest)
}
