package imapproto

// OWNED BY the conn helper: conn.go, server.go, tracker.go, caps.go (and
// their tests). beginResponse and endResponse are the contract with
// write*.go.
//
// One goroutine per connection (serve) reads a command, runs it, and
// writes its tagged answer; the Session is called from it only (and,
// during IDLE, from one more goroutine while serve waits for DONE).
// Writes happen under encMu, in whole responses (beginResponse ..
// endResponse), so that Bye and IDLE's updates from other goroutines
// never cut into a response. While a command runs, responses collect in
// the bufio.Writer and go out with the tagged answer (or when the buffer
// fills): UID FETCH 1:* over 100,000 messages is not 100,000 writes.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/bitmask-go/bitmask/internal/recovered"
)

const (
	// cmdReadTimeout is how long a client may stay silent between
	// commands (RFC 9051 §5.4: at least 30 minutes); idleReadTimeout
	// the same while it idles (clients renew IDLE every 29 minutes).
	cmdReadTimeout  = 30 * time.Minute
	idleReadTimeout = 35 * time.Minute
	// writeTimeout bounds one response's write to a client that does not
	// read.
	writeTimeout = 2 * time.Minute
	// handshakeTimeout bounds STARTTLS's handshake.
	handshakeTimeout = 30 * time.Second
	// byeWait is how long Bye waits for a response in progress before it
	// closes the connection without its BYE.
	byeWait = 5 * time.Second

	maxLine            = 64 << 10 // a command without its literals
	maxLiteral         = 64 << 10 // the literals of a command outside APPEND, together
	defaultAppendLimit = 64 << 20 // when Options.AppendLimit is 0
	readBufSize        = 16 << 10
	writeBufSize       = 32 << 10
	// maxPreAuthErrors ends a connection that sends this many bad
	// commands in a row before logging in: it is not an IMAP client (an
	// HTTP request sent to the IMAP port, RFC 9051 §11.8's cross-protocol
	// concern).
	maxPreAuthErrors = 3
)

type connState int

const (
	stateNotAuth connState = iota
	stateAuth
	stateSelected
	stateLogout
)

// Conn is one client connection.
type Conn struct {
	srv *Server
	// preAuthCounted: the connection counts among those waiting to
	// log in (serve's goroutine only).
	preAuthCounted bool
	conn           net.Conn // the current one: replaced by STARTTLS (under mu and encMu)
	br             *bufio.Reader
	bw             *bufio.Writer
	encMu          sync.Mutex // held from beginResponse to endResponse
	enc            *Encoder
	mu             sync.Mutex
	enabled        imap.CapSet

	// serve's own.
	dec        *Decoder
	sess       Session
	state      connState
	readOnly   bool // the selected mailbox was EXAMINEd
	isTLS      bool
	log        *slog.Logger
	tcp        syscall.RawConn // the TCP socket under conn, for TCP_QUICKACK; nil if none
	badInARow  int             // ParseErrors in a row before authentication
	appendSize int64           // the largest APPEND message

	inCmd  atomic.Bool // a command runs: endResponse does not flush
	inResp atomic.Bool // beginResponse was called and endResponse not yet
	// wtimeout bounds each write to the socket (under encMu): a
	// client that does not read is let go after it.
	wtimeout time.Duration
	werr     error // the first write error (under encMu)

	dbgMu     sync.Mutex
	closing   atomic.Bool // Bye or LOGOUT: the read error that follows is expected
	closeOnce sync.Once
}

// Response codes go-imap has no names for.
const (
	rcCapability imap.ResponseCode = "CAPABILITY"
	rcModified   imap.ResponseCode = "MODIFIED"
	rcCopyUID    imap.ResponseCode = "COPYUID"
	rcClosed     imap.ResponseCode = "CLOSED"
	rcReadOnly   imap.ResponseCode = "READ-ONLY"
	rcReadWrite  imap.ResponseCode = "READ-WRITE"
	rcAppendUID  imap.ResponseCode = "APPENDUID"
)

// errBroken ends a connection whose output is no longer in step with
// what the client expects (a response left half written).
var errBroken = errors.New("imapproto: connection closed after an incomplete response")

// errServerBug answers a command whose Session method panicked.
var errServerBug = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeServerBug, Text: "Internal error"}

// endConn wraps an error that ends the connection (not an answer).
type endConn struct{ err error }

func (e endConn) Error() string { return e.err.Error() }
func (e endConn) Unwrap() error { return e.err }

func newConn(s *Server, nc net.Conn) *Conn {
	c := &Conn{srv: s, conn: nc, enabled: imap.CapSet{}, log: s.log, wtimeout: writeTimeout}
	c.isTLS = isTLSConn(nc)
	c.tcp = tcpRawConn(nc)
	c.br = bufio.NewReaderSize(connReader{c}, readBufSize)
	c.bw = bufio.NewWriterSize(connWriter{c}, writeBufSize)
	c.enc = newEncoder(c.bw)
	c.appendSize = defaultAppendLimit
	if l := s.opts.AppendLimit; l > 0 {
		c.appendSize = int64(l)
	}
	c.dec = NewDecoder(c.br, Limits{
		MaxLine:        maxLine,
		MaxLiteral:     maxLiteral,
		MaxAppend:      c.appendSize,
		MaxAppendTotal: 4 * c.appendSize,
	}, c.cont)
	return c
}

func isTLSConn(nc net.Conn) bool {
	_, ok := nc.(interface{ ConnectionState() tls.ConnectionState })
	return ok
}

// tcpRawConn finds the TCP socket under nc, through wrappers that expose
// what they wrap with NetConn (as *tls.Conn does).
func tcpRawConn(nc net.Conn) syscall.RawConn {
	for range 8 {
		switch x := nc.(type) {
		case *net.TCPConn:
			rc, err := x.SyscallConn()
			if err != nil {
				return nil
			}
			return rc
		case interface{ NetConn() net.Conn }:
			nc = x.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// connReader reads from the current connection, for the bufio.Reader.
type connReader struct{ c *Conn }

func (r connReader) Read(p []byte) (int, error) {
	c := r.c
	n, err := c.conn.Read(p)
	if n > 0 {
		c.quickAck()
		c.debug(p[:n])
	}
	return n, err
}

// connWriter writes to the current connection, for the bufio.Writer
// (under encMu). The write deadline is set here, where bytes reach the
// socket (once per buffer, not per response), for each piece of at most
// writeChunk bytes: a large literal to a slow client is not cut off, a
// client that stops reading is.
type connWriter struct{ c *Conn }

const writeChunk = 256 << 10

func (w connWriter) Write(p []byte) (int, error) {
	c := w.c
	c.debug(p)
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), writeChunk)]
		_ = c.conn.SetWriteDeadline(time.Now().Add(c.wtimeout))
		n, err := c.conn.Write(chunk)
		written += n
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

func (c *Conn) debug(p []byte) {
	if d := c.srv.opts.DebugWriter; d != nil {
		c.dbgMu.Lock()
		_, _ = d.Write(p)
		c.dbgMu.Unlock()
	}
}

// NetConn is the underlying connection (for its addresses).
func (c *Conn) NetConn() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn
}

// Enabled reports whether the client enabled cap (ENABLE; CONDSTORE is
// also enabled by the first command that uses it, RFC 7162 §3.1).
func (c *Conn) Enabled(cap imap.Cap) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.enabled[cap]
	return ok
}

// Bye sends BYE with text and closes the connection; safe from any
// goroutine. A response in progress is finished first, for up to a few
// seconds.
func (c *Conn) Bye(text string) error {
	c.closing.Store(true)
	timer := time.AfterFunc(byeWait, c.closeNet)
	defer timer.Stop()
	c.encMu.Lock()
	c.wtimeout = byeWait
	err := c.enc.writeStatus(&Status{Type: imap.StatusResponseTypeBye, Text: text})
	if ferr := c.bw.Flush(); err == nil {
		err = ferr
	}
	c.encMu.Unlock()
	c.closeNet()
	return err
}

// closeNet closes the connection (once).
func (c *Conn) closeNet() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		nc := c.conn
		c.mu.Unlock()
		_ = nc.Close()
	})
}

// beginResponse locks the connection's writer for one or more responses
// (a FETCH response with its literals) and sets the write deadline; end
// it with endResponse, which flushes unless a command is running (its
// tagged answer flushes).
func (c *Conn) beginResponse() *Encoder {
	c.encMu.Lock()
	c.inResp.Store(true)
	return c.enc
}

func (c *Conn) endResponse() error {
	err := c.enc.err
	if err == nil {
		if !c.inCmd.Load() {
			err = c.bw.Flush()
		} else {
			_, err = c.bw.Write(nil) // the writer's sticky error
		}
	}
	if err != nil && c.werr == nil {
		c.werr = err
		if c.enc.err != nil {
			// A literal written short or long: the client would read
			// what follows as part of it.
			c.closeNet()
		}
	}
	c.inResp.Store(false)
	c.encMu.Unlock()
	return err
}

// writeErr is the first write error, if any.
func (c *Conn) writeErr() error {
	c.encMu.Lock()
	defer c.encMu.Unlock()
	return c.werr
}

// writeNow writes responses and flushes them at once (a continuation
// request, the greeting).
func (c *Conn) writeNow(f func(e *Encoder) error) error {
	e := c.beginResponse()
	err := f(e)
	if ferr := c.bw.Flush(); err == nil {
		err = ferr
	}
	if eerr := c.endResponse(); err == nil {
		err = eerr
	}
	return err
}

// reply writes the tagged answer (or an untagged one for a command
// without a tag) and flushes everything the command wrote.
func (c *Conn) reply(s *Status) error {
	e := c.beginResponse()
	c.inCmd.Store(false)
	err := e.writeStatus(s)
	if eerr := c.endResponse(); err == nil {
		err = eerr
	}
	return err
}

// cont is the Decoder's go-ahead for a synchronizing literal.
func (c *Conn) cont() error {
	err := c.writeNow(func(e *Encoder) error { return e.writeContinuation("Ready") })
	c.quickAck()
	return err
}

func (c *Conn) setReadTimeout(d time.Duration) {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
}

func (c *Conn) canStartTLS() bool {
	return c.srv.opts.TLSConfig != nil && !c.isTLS && c.state == stateNotAuth
}

func (c *Conn) canAuth() bool {
	return c.state == stateNotAuth && (c.isTLS || c.srv.opts.InsecureAuth)
}

// serve runs the connection until it ends.
func (c *Conn) serve() {
	defer c.closeNet()
	defer func() {
		// A panic of this layer (not of the Session: see call) ends this
		// connection only.
		if v := recover(); v != nil {
			p := recovered.New(v)
			c.log.Error("imapproto: connection failed; closed", p.LogAttrs()...)
			c.releaseWriter()
		}
	}()

	c.srv.takePreAuth(c)
	c.preAuthCounted = true
	defer c.leavePreAuth()
	// Logging in has one deadline from the connection, not one per
	// command: a connection cannot stay logged out by sending NOOPs.
	loginBy := time.Now().Add(c.srv.preAuthTimeout())

	sess, err := c.srv.opts.NewSession(c)
	if err != nil {
		text := "Server unavailable"
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeBye {
			text = ie.Text
		} else {
			c.log.Error("imapproto: no session for a connection", "err", err)
		}
		_ = c.writeNow(func(e *Encoder) error {
			return e.writeStatus(&Status{Type: imap.StatusResponseTypeBye, Text: text})
		})
		return
	}
	c.sess = sess
	defer c.closeSession()

	c.state = stateNotAuth
	caps := c.caps()
	if err := c.writeNow(func(e *Encoder) error {
		return e.writeStatus(&Status{Type: imap.StatusResponseTypeOK, Code: rcCapability, CodeArg: codeCaps(caps), Text: "ready"})
	}); err != nil {
		return
	}

	for c.state != stateLogout {
		if c.state == stateNotAuth {
			_ = c.conn.SetReadDeadline(loginBy)
		} else {
			// Logged in (a later UNAUTHENTICATE is not counted again).
			c.leavePreAuth()
			c.setReadTimeout(cmdReadTimeout)
		}
		c.dec.setPreAuth(c.state == stateNotAuth)
		cmd, err := c.dec.ReadCommand()
		if err != nil {
			var pe *ParseError
			if errors.As(err, &pe) {
				if c.parseError(pe) != nil {
					return
				}
				continue
			}
			c.readFailed(err)
			return
		}
		if err := c.handle(cmd); err != nil {
			if !c.closing.Load() && !errors.Is(err, net.ErrClosed) {
				c.log.Debug("imapproto: connection ended", "err", err)
			}
			return
		}
	}
}

// leavePreAuth stops counting the connection among those waiting to log
// in (Server.takePreAuth); only serve's goroutine calls it.
func (c *Conn) leavePreAuth() {
	if c.preAuthCounted {
		c.preAuthCounted = false
		c.srv.leavePreAuth(c)
	}
}

// releaseWriter, after a panic of this layer, closes the connection and
// frees the writer if serve held it (nobody else can then: IDLE's
// goroutine has ended by the time serve could panic, see idle, and Bye
// does not mark inResp).
func (c *Conn) releaseWriter() {
	c.closeNet()
	if c.inResp.Load() {
		c.inResp.Store(false)
		c.encMu.Unlock()
	}
}

// closeSession ends the Session. During a panic of this layer it runs
// before serve's recovery: the writer is freed first, in case Close
// writes (a BYE) or waits for a goroutine that does.
func (c *Conn) closeSession() {
	if c.inResp.Load() {
		c.releaseWriter()
	}
	if p := recovered.Do(func() {
		if err := c.sess.Close(); err != nil {
			c.log.Warn("imapproto: closing the session failed", "err", err)
		}
	}); p != nil {
		c.log.Error("imapproto: closing the session panicked", p.LogAttrs()...)
	}
}

// readFailed ends the connection on a read error: a client silent for
// too long is told why.
func (c *Conn) readFailed(err error) {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		_ = c.Bye("Autologout; idle for too long")
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), c.closing.Load():
	default:
		c.log.Debug("imapproto: reading a command failed", "err", err)
	}
}

// parseError answers a command that could not be read.
func (c *Conn) parseError(pe *ParseError) error {
	if c.state == stateNotAuth {
		c.badInARow++
		if c.badInARow >= maxPreAuthErrors {
			_ = c.Bye("Too many invalid commands")
			return errBroken
		}
	}
	text := pe.Text
	if text == "" {
		text = "Invalid command"
	}
	return c.reply(&Status{Tag: pe.Tag, Type: imap.StatusResponseTypeBad, Text: text})
}

// commandStates says in which states each command may be given.
var commandStates = map[string]uint8{}

const (
	inNotAuth = 1 << iota
	inAuth
	inSelected
)

func init() {
	for _, n := range []string{"CAPABILITY", "NOOP", "LOGOUT", "ID"} {
		commandStates[n] = inNotAuth | inAuth | inSelected
	}
	for _, n := range []string{"STARTTLS", "AUTHENTICATE", "LOGIN"} {
		commandStates[n] = inNotAuth
	}
	for _, n := range []string{"ENABLE", "SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE",
		"UNSUBSCRIBE", "LIST", "LSUB", "NAMESPACE", "STATUS", "APPEND", "IDLE", "UNAUTHENTICATE"} {
		commandStates[n] = inAuth | inSelected
	}
	for _, n := range []string{"CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "SEARCH", "FETCH", "STORE", "COPY", "MOVE"} {
		commandStates[n] = inSelected
	}
}

func (c *Conn) stateBit() uint8 {
	switch c.state {
	case stateNotAuth:
		return inNotAuth
	case stateAuth:
		return inAuth
	case stateSelected:
		return inSelected
	}
	return 0
}

// handle runs one command and answers it. An error ends the connection.
func (c *Conn) handle(cmd *Command) error {
	c.inCmd.Store(true)
	states, known := commandStates[cmd.Name]
	if !known {
		return c.answer(cmd, nil, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Unknown command"})
	}
	if states&c.stateBit() == 0 {
		return c.answer(cmd, nil, &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug,
			Text: cmd.Name + " is not valid in this state"})
	}
	// A command that uses a CONDSTORE feature enables it (RFC 7162
	// §3.1); SELECT's parameters are checked first (selectMailbox).
	if cmd.CondStore && cmd.Name != "SELECT" && cmd.Name != "EXAMINE" {
		c.enable(imap.CapCondStore)
	}
	ok, err := c.dispatch(cmd)
	return c.answer(cmd, ok, err)
}

// answer writes the tagged answer of cmd: ok (nil when the handler
// answered itself), or err's.
func (c *Conn) answer(cmd *Command, ok *Status, err error) error {
	var end endConn
	if errors.As(err, &end) || errors.Is(err, errBroken) {
		return err
	}
	if werr := c.writeErr(); werr != nil {
		return endConn{werr}
	}
	if err == nil && ok == nil {
		c.inCmd.Store(false)
		return nil
	}
	if err != nil {
		ok = c.errorStatus(cmd, err)
		if ok.Type == imap.StatusResponseTypeBye {
			_ = c.Bye(ok.Text)
			return errBroken
		}
	} else if c.state == stateNotAuth {
		c.badInARow = 0
	}
	if ok.Type != imap.StatusResponseTypeBad {
		if perr := c.poll(cmd); perr != nil {
			return perr
		}
	}
	ok.Tag = cmd.Tag
	if ok.Text == "" && ok.Type == imap.StatusResponseTypeOK {
		ok.Text = cmd.Name + " completed"
		if cmd.UID {
			ok.Text = "UID " + ok.Text
		}
	}
	if err := c.reply(ok); err != nil {
		return endConn{err}
	}
	return nil
}

// errorStatus is what an error from a command answers.
func (c *Conn) errorStatus(cmd *Command, err error) *Status {
	var ie *imap.Error
	if errors.As(err, &ie) {
		t := ie.Type
		if t != imap.StatusResponseTypeBad && t != imap.StatusResponseTypeBye {
			t = imap.StatusResponseTypeNo
		}
		return &Status{Type: t, Code: ie.Code, Text: ie.Text}
	}
	c.log.Warn("imapproto: command failed", "command", cmd.Name, "err", err)
	return &Status{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeServerBug, Text: cmd.Name + " failed (see the server log)"}
}

// poll writes the selected mailbox's updates before a tagged answer.
// EXPUNGE may not be sent after FETCH, STORE and SEARCH by sequence
// number (RFC 9051 §7.5.1).
func (c *Conn) poll(cmd *Command) error {
	if c.state != stateAuth && c.state != stateSelected {
		return nil
	}
	allowExpunge := true
	switch cmd.Name {
	case "FETCH", "STORE", "SEARCH":
		allowExpunge = cmd.UID
	}
	err := c.call("poll", func() error { return c.sess.Poll(&UpdateWriter{c: c}, allowExpunge) })
	if errors.Is(err, errBroken) {
		return err
	}
	if werr := c.writeErr(); werr != nil {
		return endConn{werr}
	}
	if err != nil && !errors.Is(err, errServerBug) {
		c.log.Warn("imapproto: writing mailbox updates failed", "err", err)
	}
	return nil
}

// call runs a Session method. A panic in it is logged (its type and
// stack, not its text: it may quote what was being handled) and the
// command is answered NO [SERVERBUG]; if it left a response half
// written, the client cannot read what would follow: it gets BYE and the
// connection ends. A method that returns with a response still open
// (a FetchResponseWriter not closed) ends it the same way.
func (c *Conn) call(name string, f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			p := recovered.New(v)
			c.log.Error("imapproto: "+name+" panicked", p.LogAttrs()...)
			err = errServerBug
		}
		if c.inResp.Load() {
			if err == nil || !errors.Is(err, errServerBug) {
				c.log.Error("imapproto: " + name + " left a response unfinished")
			}
			c.cutShort()
			err = errBroken
		}
	}()
	return f()
}

// cutShort ends the connection in the middle of a response that the
// calling goroutine holds: BYE on a line of its own, then close.
func (c *Conn) cutShort() {
	c.closing.Store(true)
	c.wtimeout = time.Second
	_, _ = c.bw.WriteString("\r\n* BYE Internal error\r\n")
	_ = c.bw.Flush()
	c.closeNet()
	if c.werr == nil {
		c.werr = errBroken
	}
	c.inResp.Store(false)
	c.encMu.Unlock()
}

// argsOf returns cmd's arguments as a T; a command the parser gave the
// wrong arguments is answered BAD.
func argsOf[T any](cmd *Command) (T, error) {
	a, ok := cmd.Args.(T)
	if !ok {
		var zero T
		return zero, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Invalid arguments"}
	}
	return a, nil
}

func kindOf(cmd *Command) NumKind {
	if cmd.UID {
		return NumKindUID
	}
	return NumKindSeq
}

func okStatus(code imap.ResponseCode, arg func(e *Encoder), text string) *Status {
	return &Status{Type: imap.StatusResponseTypeOK, Code: code, CodeArg: arg, Text: text}
}

func badErr(text string) error {
	return &imap.Error{Type: imap.StatusResponseTypeBad, Text: text}
}

// dispatch runs a command allowed in the current state. It returns the
// tagged OK, or nil when it answered itself, or the error to answer.
func (c *Conn) dispatch(cmd *Command) (*Status, error) {
	s := c.sess
	switch cmd.Name {
	case "NOOP", "CHECK":
		return okStatus("", nil, ""), nil
	case "CAPABILITY":
		caps := c.caps()
		e := c.beginResponse()
		_ = e.writeCapability(caps)
		return okStatus("", nil, ""), c.endResponse()
	case "LOGOUT":
		c.state = stateLogout
		c.closing.Store(true)
		e := c.beginResponse()
		c.inCmd.Store(false)
		_ = e.writeStatus(&Status{Type: imap.StatusResponseTypeBye, Text: "Logging out"})
		_ = e.writeStatus(&Status{Tag: cmd.Tag, Type: imap.StatusResponseTypeOK, Text: "LOGOUT completed"})
		_ = c.endResponse()
		return nil, nil
	case "ID":
		return c.id(cmd)
	case "STARTTLS":
		return c.startTLS(cmd)
	case "LOGIN":
		a, err := argsOf[*LoginArgs](cmd)
		if err != nil {
			return nil, err
		}
		return c.login(a.Username, a.Password)
	case "AUTHENTICATE":
		return c.authenticate(cmd)
	case "UNAUTHENTICATE":
		if err := c.call(cmd.Name, s.Unauthenticate); err != nil {
			return nil, err
		}
		c.state = stateNotAuth
		c.readOnly = false
		c.mu.Lock()
		c.enabled = imap.CapSet{}
		c.mu.Unlock()
		c.setModes(false, false)
		return okStatus("", nil, ""), nil
	case "ENABLE":
		a, err := argsOf[*EnableArgs](cmd)
		if err != nil {
			return nil, err
		}
		done := c.enable(a.Caps...)
		e := c.beginResponse()
		_ = e.writeEnabled(done)
		return okStatus("", nil, ""), c.endResponse()
	case "SELECT", "EXAMINE":
		return c.selectMailbox(cmd)
	case "CREATE":
		a, err := argsOf[*CreateArgs](cmd)
		if err != nil {
			return nil, err
		}
		return c.simple(cmd, func() error { return s.Create(a.Mailbox, &a.Options) })
	case "DELETE", "SUBSCRIBE", "UNSUBSCRIBE":
		a, err := argsOf[*MailboxArgs](cmd)
		if err != nil {
			return nil, err
		}
		f := s.Delete
		switch cmd.Name {
		case "SUBSCRIBE":
			f = s.Subscribe
		case "UNSUBSCRIBE":
			f = s.Unsubscribe
		}
		return c.simple(cmd, func() error { return f(a.Mailbox) })
	case "RENAME":
		a, err := argsOf[*RenameArgs](cmd)
		if err != nil {
			return nil, err
		}
		return c.simple(cmd, func() error { return s.Rename(a.Mailbox, a.NewName) })
	case "LIST", "LSUB":
		a, err := argsOf[*ListArgs](cmd)
		if err != nil {
			return nil, err
		}
		lsub := cmd.Name == "LSUB"
		opts := a.Options
		if lsub {
			opts.SelectSubscribed = true
		}
		if opts.ReturnStatus != nil && opts.ReturnStatus.HighestModSeq {
			c.enable(imap.CapCondStore)
		}
		w := &ListWriter{c: c, lsub: lsub, opts: &opts}
		return c.simple(cmd, func() error { return s.List(w, a.Ref, a.Patterns, &opts, lsub) })
	case "NAMESPACE":
		var data *imap.NamespaceData
		if err := c.call(cmd.Name, func() (err error) { data, err = s.Namespace(); return err }); err != nil {
			return nil, err
		}
		if data == nil {
			data = &imap.NamespaceData{}
		}
		e := c.beginResponse()
		_ = e.writeNamespace(data)
		return okStatus("", nil, ""), c.endResponse()
	case "STATUS":
		a, err := argsOf[*StatusArgs](cmd)
		if err != nil {
			return nil, err
		}
		if a.Options.HighestModSeq {
			c.enable(imap.CapCondStore)
		}
		var data *imap.StatusData
		if err := c.call(cmd.Name, func() (err error) { data, err = s.Status(a.Mailbox, &a.Options); return err }); err != nil {
			return nil, err
		}
		if data == nil {
			return nil, fmt.Errorf("imapproto: STATUS: the session returned no data")
		}
		if data.Mailbox == "" {
			data.Mailbox = a.Mailbox
		}
		e := c.beginResponse()
		_ = e.writeStatusData(data)
		return okStatus("", nil, ""), c.endResponse()
	case "APPEND":
		return c.append(cmd)
	case "IDLE":
		return c.idle(cmd)
	case "UNSELECT", "CLOSE":
		var err error
		if cmd.Name == "CLOSE" && !c.readOnly {
			err = c.call(cmd.Name, func() error { return s.Expunge(&UpdateWriter{c: c}, nil, true) })
			if errors.Is(err, errBroken) {
				return nil, err
			}
		}
		// The mailbox is closed even when its expunge failed.
		c.state = stateAuth
		c.readOnly = false
		if uerr := c.call(cmd.Name, s.Unselect); err == nil {
			err = uerr
		}
		if err != nil {
			return nil, err
		}
		return okStatus("", nil, ""), nil
	case "EXPUNGE":
		var uids *imap.UIDSet
		if cmd.UID {
			a, err := argsOf[*ExpungeArgs](cmd)
			if err != nil {
				return nil, err
			}
			uids = &a.UIDs
		}
		return c.simple(cmd, func() error { return s.Expunge(&UpdateWriter{c: c}, uids, false) })
	case "SEARCH":
		return c.search(cmd)
	case "FETCH":
		a, err := argsOf[*FetchArgs](cmd)
		if err != nil {
			return nil, err
		}
		if a.Options.Vanished && (!cmd.UID || a.Options.ChangedSince == 0 || !c.Enabled(imap.CapQResync)) {
			return nil, badErr("VANISHED needs UID FETCH, CHANGEDSINCE and QRESYNC enabled")
		}
		if a.Options.ModSeq || a.Options.ChangedSince != 0 {
			c.enable(imap.CapCondStore)
		}
		w := &FetchWriter{c: c, opts: &a.Options}
		return c.simple(cmd, func() error { return s.Fetch(w, kindOf(cmd), a.NumSet, &a.Options) })
	case "STORE":
		a, err := argsOf[*StoreArgs](cmd)
		if err != nil {
			return nil, err
		}
		if a.Options.UnchangedSince != 0 || a.HasUnchangedSince {
			c.enable(imap.CapCondStore)
		}
		if a.HasUnchangedSince && a.Options.UnchangedSince == 0 {
			// Every message fails UNCHANGEDSINCE 0 (RFC 7162 §3.1.3);
			// the Session's options cannot say 0, so it is not asked.
			if imap.IsSearchRes(a.NumSet) {
				return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "UNCHANGEDSINCE 0 with $ is not supported"}
			}
			return okStatus(rcModified, codeNumSet(a.NumSet), "Conditional STORE failed"), nil
		}
		w := &FetchWriter{c: c}
		var modified imap.NumSet
		if err := c.call(cmd.Name, func() (err error) {
			modified, err = s.Store(w, kindOf(cmd), a.NumSet, &a.Flags, &a.Options)
			return err
		}); err != nil {
			return nil, err
		}
		if modified != nil && !numSetEmpty(modified) {
			return okStatus(rcModified, codeNumSet(modified), "Conditional STORE failed"), nil
		}
		return okStatus("", nil, ""), nil
	case "COPY":
		a, err := argsOf[*CopyArgs](cmd)
		if err != nil {
			return nil, err
		}
		var data *imap.CopyData
		if err := c.call(cmd.Name, func() (err error) { data, err = s.Copy(kindOf(cmd), a.NumSet, a.Dest); return err }); err != nil {
			return nil, err
		}
		if data != nil && data.UIDValidity != 0 && !numSetEmpty(data.SourceUIDs) {
			return okStatus(rcCopyUID, codeCopyUID(data), ""), nil
		}
		return okStatus("", nil, ""), nil
	case "MOVE":
		a, err := argsOf[*CopyArgs](cmd)
		if err != nil {
			return nil, err
		}
		return c.simple(cmd, func() error { return s.Move(&UpdateWriter{c: c}, kindOf(cmd), a.NumSet, a.Dest) })
	}
	return nil, badErr("Unknown command")
}

// simple runs a Session method whose success is a plain OK.
func (c *Conn) simple(cmd *Command, f func() error) (*Status, error) {
	if err := c.call(cmd.Name, f); err != nil {
		return nil, err
	}
	return okStatus("", nil, ""), nil
}

// id answers ID (RFC 2971) with Options.ID. What the client says of
// itself is not logged (it can name the user's device).
func (c *Conn) id(cmd *Command) (*Status, error) {
	a, err := argsOf[*IDArgs](cmd)
	if err != nil {
		return nil, err
	}
	c.log.Debug("imapproto: client ID", "fields", len(a.Params))
	e := c.beginResponse()
	_ = e.writeID(c.srv.opts.ID)
	return okStatus("", nil, ""), c.endResponse()
}

// enable turns on what ENABLE (or a command using it) asks and returns
// what it turned on that was not on yet (RFC 5161). QRESYNC implies
// CONDSTORE (RFC 7162 §3.2.3); UTF8=ACCEPT and IMAP4rev2 make mailbox
// names UTF-8 both ways (RFC 6855, RFC 9051 §5.1).
func (c *Conn) enable(caps ...imap.Cap) []imap.Cap {
	var done []imap.Cap
	c.mu.Lock()
	for _, cp := range caps {
		cp = canonicalCap(string(cp)) // IMAP4rev2 is not all upper case
		if !enableable[cp] {
			continue
		}
		if _, on := c.enabled[cp]; on {
			continue
		}
		c.enabled[cp] = struct{}{}
		if cp == imap.CapQResync {
			c.enabled[imap.CapCondStore] = struct{}{}
		}
		done = append(done, cp)
	}
	_, utf8 := c.enabled[imap.CapUTF8Accept]
	_, rev2 := c.enabled[imap.CapIMAP4rev2]
	c.mu.Unlock()
	c.setModes(utf8 || rev2, rev2)
	return done
}

func (c *Conn) setModes(utf8, rev2 bool) {
	c.dec.SetUTF8(utf8)
	c.encMu.Lock()
	c.enc.utf8, c.enc.rev2 = utf8, rev2
	c.encMu.Unlock()
}

// startTLS answers STARTTLS and starts TLS. Whatever the client sent
// after the command in plain text is dropped: it is not part of the TLS
// session (a man in the middle could have added it).
func (c *Conn) startTLS(cmd *Command) (*Status, error) {
	cfg := c.srv.opts.TLSConfig
	if cfg == nil {
		return nil, badErr("STARTTLS is not available")
	}
	if c.isTLS {
		return nil, badErr("TLS is already on")
	}
	e := c.beginResponse()
	c.inCmd.Store(false)
	_ = e.writeStatus(&Status{Tag: cmd.Tag, Type: imap.StatusResponseTypeOK, Text: "Begin TLS negotiation now"})
	if err := c.bw.Flush(); err != nil {
		_ = c.endResponse()
		return nil, endConn{err}
	}
	if n := c.br.Buffered(); n > 0 {
		c.log.Info("imapproto: plain text after STARTTLS dropped", "bytes", n)
	}
	tc := tls.Server(c.conn, cfg)
	c.mu.Lock()
	c.conn = tc
	c.mu.Unlock()
	c.br.Reset(connReader{c})
	c.bw.Reset(connWriter{c})
	c.isTLS = true
	_ = c.endResponse()

	_ = tc.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.Handshake(); err != nil {
		c.log.Debug("imapproto: STARTTLS handshake failed", "err", err)
		return nil, endConn{err}
	}
	_ = tc.SetDeadline(time.Time{})
	return nil, nil
}

var (
	errPrivacy = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodePrivacyRequired, Text: "Authentication needs TLS (STARTTLS)"}
	errAuth    = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "Authentication failed"}
)

// login runs LOGIN or AUTHENTICATE's credentials.
func (c *Conn) login(user, pass string) (*Status, error) {
	if !c.canAuth() {
		return nil, errPrivacy
	}
	if err := c.call("LOGIN", func() error { return c.sess.Login(user, pass) }); err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) || errors.Is(err, errBroken) {
			return nil, err
		}
		c.log.Warn("imapproto: login failed", "err", err)
		return nil, errAuth
	}
	c.state = stateAuth
	c.badInARow = 0
	return okStatus(rcCapability, codeCaps(c.caps()), "Logged in"), nil
}

// authenticate runs AUTHENTICATE PLAIN (RFC 4616), with the initial
// response on the command line (SASL-IR, RFC 4959) or after a "+ ".
func (c *Conn) authenticate(cmd *Command) (*Status, error) {
	a, err := argsOf[*AuthenticateArgs](cmd)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(a.Mechanism, "PLAIN") {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Unsupported authentication mechanism"}
	}
	if !c.canAuth() {
		return nil, errPrivacy
	}
	resp := a.Initial
	if !a.HasInitial {
		if err := c.writeNow(func(e *Encoder) error { return e.writeContinuation("") }); err != nil {
			return nil, endConn{err}
		}
		line, err := c.dec.ReadLine()
		if err != nil {
			var pe *ParseError
			if errors.As(err, &pe) {
				return nil, badErr("Invalid authentication response")
			}
			return nil, endConn{err}
		}
		if line == "*" {
			return nil, badErr("Authentication cancelled")
		}
		if line != "" && line != "=" {
			if resp, err = base64.StdEncoding.DecodeString(line); err != nil {
				return nil, badErr("Invalid base64")
			}
		}
	}
	// authzid NUL authcid NUL passwd
	authz, rest, ok1 := bytes.Cut(resp, []byte{0})
	user, pass, ok2 := bytes.Cut(rest, []byte{0})
	if !ok1 || !ok2 || len(user) == 0 {
		return nil, errAuth
	}
	if len(authz) > 0 && !bytes.Equal(authz, user) {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthorizationFailed, Text: "Cannot act as another user"}
	}
	return c.login(string(user), string(pass))
}

// selectMailbox runs SELECT and EXAMINE.
func (c *Conn) selectMailbox(cmd *Command) (*Status, error) {
	a, err := argsOf[*SelectArgs](cmd)
	if err != nil {
		return nil, err
	}
	opts := a.Options
	opts.ReadOnly = opts.ReadOnly || cmd.Name == "EXAMINE"
	if opts.QResync != nil && !c.Enabled(imap.CapQResync) {
		return nil, badErr("QRESYNC is not enabled")
	}
	if opts.CondStore || cmd.CondStore {
		c.enable(imap.CapCondStore)
	}
	if c.state == stateSelected {
		// The current mailbox is closed whatever becomes of the new one.
		c.state = stateAuth
		c.readOnly = false
		if err := c.call("UNSELECT", c.sess.Unselect); errors.Is(err, errBroken) {
			return nil, err
		}
		if c.Enabled(imap.CapQResync) || c.Enabled(imap.CapIMAP4rev2) {
			e := c.beginResponse()
			_ = e.writeStatus(&Status{Type: imap.StatusResponseTypeOK, Code: rcClosed, Text: "Previous mailbox closed"})
			if err := c.endResponse(); err != nil {
				return nil, endConn{err}
			}
		}
	}
	var data *SelectData
	if err := c.call(cmd.Name, func() (err error) { data, err = c.sess.Select(a.Mailbox, &opts); return err }); err != nil {
		return nil, err
	}
	if data == nil {
		_ = c.call("UNSELECT", c.sess.Unselect)
		return nil, errors.New("imapproto: SELECT: the session returned no data")
	}
	e := c.beginResponse()
	_ = e.writeSelect(data, opts.ReadOnly)
	if err := c.endResponse(); err != nil {
		return nil, endConn{err}
	}
	if data.After != nil {
		if err := c.call(cmd.Name, func() error { return data.After(&UpdateWriter{c: c}) }); err != nil {
			if !errors.Is(err, errBroken) {
				_ = c.call("UNSELECT", c.sess.Unselect)
			}
			return nil, err
		}
	}
	c.state = stateSelected
	c.readOnly = opts.ReadOnly
	if opts.ReadOnly {
		return okStatus(rcReadOnly, nil, cmd.Name+" completed"), nil
	}
	return okStatus(rcReadWrite, nil, cmd.Name+" completed"), nil
}

// append runs APPEND and MULTIAPPEND.
func (c *Conn) append(cmd *Command) (*Status, error) {
	a, err := argsOf[*AppendArgs](cmd)
	if err != nil {
		return nil, err
	}
	if a.TooBig {
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig,
			Text: fmt.Sprintf("Message over the limit of %d bytes", c.appendSize)}
	}
	if len(a.Messages) == 0 {
		return nil, badErr("APPEND without a message")
	}
	var data *AppendData
	if err := c.call(cmd.Name, func() (err error) { data, err = c.sess.Append(a.Mailbox, a.Messages); return err }); err != nil {
		return nil, err
	}
	if data != nil && data.UIDValidity != 0 && len(data.UIDs) > 0 {
		return okStatus(rcAppendUID, codeAppendUID(data), "APPEND completed"), nil
	}
	return okStatus("", nil, ""), nil
}

// search runs SEARCH; the session's result is written as SEARCH or
// ESEARCH (writeSearch decides).
func (c *Conn) search(cmd *Command) (*Status, error) {
	a, err := argsOf[*SearchArgs](cmd)
	if err != nil {
		return nil, err
	}
	switch strings.ToUpper(a.Charset) {
	case "", "UTF-8", "US-ASCII":
	default:
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeBadCharset, Text: "Only UTF-8 and US-ASCII are supported"}
	}
	if usesModSeq(&a.Criteria) {
		c.enable(imap.CapCondStore)
	}
	var data *imap.SearchData
	if err := c.call(cmd.Name, func() (err error) {
		data, err = c.sess.Search(kindOf(cmd), &a.Criteria, &a.Options)
		return err
	}); err != nil {
		return nil, err
	}
	e := c.beginResponse()
	_ = e.writeSearch(cmd.Tag, kindOf(cmd), data, a)
	return okStatus("", nil, ""), c.endResponse()
}

// usesModSeq reports whether a search has a MODSEQ key, anywhere.
func usesModSeq(cr *imap.SearchCriteria) bool {
	if cr.ModSeq != nil {
		return true
	}
	for i := range cr.Not {
		if usesModSeq(&cr.Not[i]) {
			return true
		}
	}
	for i := range cr.Or {
		if usesModSeq(&cr.Or[i][0]) || usesModSeq(&cr.Or[i][1]) {
			return true
		}
	}
	return false
}

// idle runs IDLE (RFC 2177): the session writes updates from a goroutine
// of its own while this one waits for DONE.
func (c *Conn) idle(cmd *Command) (*Status, error) {
	if err := c.writeNow(func(e *Encoder) error { return e.writeContinuation("idling") }); err != nil {
		return nil, endConn{err}
	}
	c.inCmd.Store(false) // updates go out at once
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- c.call("IDLE", func() error { return c.sess.Idle(&UpdateWriter{c: c}, stop) })
	}()
	var line string
	var rerr error
	p := recovered.Do(func() {
		c.setReadTimeout(idleReadTimeout)
		line, rerr = c.dec.ReadLine()
	})
	close(stop)
	if p != nil {
		// This layer failed; the session's goroutine may be writing:
		// end the connection under it and wait for it.
		c.log.Error("imapproto: reading DONE panicked; connection closed", p.LogAttrs()...)
		c.closeNet()
		<-done
		return nil, errBroken
	}
	ierr := <-done
	c.inCmd.Store(true)
	if errors.Is(ierr, errBroken) {
		return nil, ierr
	}
	if rerr != nil {
		var pe *ParseError
		if !errors.As(rerr, &pe) {
			if errors.Is(rerr, os.ErrDeadlineExceeded) {
				_ = c.Bye("Autologout; idle for too long")
			}
			return nil, endConn{rerr}
		}
		return nil, badErr("Expected DONE")
	}
	if !strings.EqualFold(line, "DONE") {
		return nil, badErr("Expected DONE")
	}
	if ierr != nil {
		return nil, ierr
	}
	return okStatus("", nil, "IDLE terminated"), nil
}

// quickAck asks the kernel to acknowledge received data at once (see
// conn_linux.go).
func (c *Conn) quickAck() {
	if c.tcp != nil {
		quickAck(c.tcp)
	}
}
