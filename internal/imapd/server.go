package imapd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/bitmask-go/bitmask/internal/imapproto"
)

// Config configures a Server.
type Config struct {
	// TLS is used for STARTTLS on Serve's listeners and for the implicit
	// TLS of ServeTLS. With nil, Serve offers no STARTTLS.
	TLS *tls.Config
	// Logger gets the server's log lines (never passwords or message
	// content). Nil means slog.Default().
	Logger *slog.Logger
	// Debug, when set, gets a copy of every byte exchanged with clients.
	// That includes passwords and mail: for debugging only.
	Debug io.Writer
}

// Server is the IMAP server of bitmaskd. One Server may serve several
// listeners; connections of the same account share per-mailbox state.
type Server struct {
	auth Auth
	cfg  Config
	log  *slog.Logger

	ownEventWait time.Duration

	mu       sync.Mutex
	accounts map[Mailstore]*account
}

// New makes a server that authenticates clients with auth.
func New(auth Auth, cfg Config) *Server {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Server{auth: auth, cfg: cfg, log: log, ownEventWait: defaultOwnEventWait, accounts: map[Mailstore]*account{}}
}

// maxAppendSize is the largest message APPEND takes (advertised as
// APPENDLIMIT); the limit is checked before the client sends the message.
const maxAppendSize = 64 << 20

// capabilities advertised beyond those imapproto gives itself (see its
// caps.go): the extensions whose meaning is this server's.
var capabilities = imap.CapSet{
	imap.CapNamespace:      {},
	imap.CapUIDPlus:        {},
	imap.CapESearch:        {},
	imap.CapSearchRes:      {},
	imap.CapListExtended:   {},
	imap.CapListStatus:     {},
	imap.CapMove:           {},
	imap.CapStatusSize:     {},
	imap.CapChildren:       {},
	imap.CapBinary:         {},
	imap.CapSpecialUse:     {},
	imap.CapUnauthenticate: {},
	imap.CapCondStore:      {},
	imap.CapQResync:        {},
}

// Serve serves IMAP on ln (plain text, with STARTTLS when Config.TLS is
// set) until ctx is done, then closes ln and every connection it accepted
// and returns nil once their sessions have ended.
//
// LOGIN and AUTHENTICATE PLAIN are allowed before TLS: bitmaskd listens on
// loopback only, where nobody can read the connection, and mail clients on
// localhost commonly do not use STARTTLS. The password is the account's
// local token, not the account password.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.serve(ctx, ln, false)
}

// ServeTLS serves IMAP over implicit TLS (Config.TLS, which must be set)
// on ln, like Serve.
func (s *Server) ServeTLS(ctx context.Context, ln net.Listener) error {
	if s.cfg.TLS == nil {
		return errors.New("imapd: ServeTLS needs Config.TLS")
	}
	return s.serve(ctx, ln, true)
}

func (s *Server) serve(ctx context.Context, ln net.Listener, implicitTLS bool) error {
	tl := &trackingListener{Listener: ln, conns: map[*trackedConn]struct{}{}}
	var l net.Listener = tl
	if implicitTLS {
		l = tls.NewListener(tl, s.cfg.TLS)
	}
	var group sessionGroup
	srv := imapproto.New(&imapproto.Options{
		NewSession: func(c *imapproto.Conn) (imapproto.Session, error) {
			if !group.add() {
				return nil, &imap.Error{Type: imap.StatusResponseTypeBye, Text: "Server shutting down"}
			}
			return s.newSession(c, group.done), nil
		},
		Caps:         capabilities,
		AppendLimit:  maxAppendSize,
		ID:           map[string]string{"name": "bitmaskd", "vendor": "Bitmask in Go"},
		Logger:       s.log,
		TLSConfig:    s.cfg.TLS,
		InsecureAuth: true,
		DebugWriter:  s.cfg.Debug,
	})
	stop := context.AfterFunc(ctx, tl.shutdown)
	defer stop()
	err := srv.Serve(l)
	tl.shutdown()
	group.closeAndWait()
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("imapd: serve: %w", err)
	}
	return nil
}

// sessionGroup counts a listener's live sessions.
type sessionGroup struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (g *sessionGroup) add() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	return true
}

func (g *sessionGroup) done() { g.wg.Done() }

func (g *sessionGroup) closeAndWait() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.wg.Wait()
}

// trackingListener remembers its connections so that shutting down can
// close them (go-imap's Server.Close would also close the listeners of
// other Serve calls and misses connections accepted a moment earlier).
type trackingListener struct {
	net.Listener
	mu     sync.Mutex
	closed bool
	conns  map[*trackedConn]struct{}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, l: l}
	l.mu.Lock()
	closed := l.closed
	if !closed {
		l.conns[tc] = struct{}{}
	}
	l.mu.Unlock()
	if closed {
		c.Close()
		return nil, net.ErrClosed
	}
	return tc, nil
}

func (l *trackingListener) shutdown() {
	l.mu.Lock()
	l.closed = true
	conns := make([]*trackedConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	l.Listener.Close()
	for _, c := range conns {
		c.kill()
	}
}

// trackedConn is a connection the listener knows. Writes go straight to
// the socket: imapproto buffers a command's responses and flushes them
// with its tagged answer (or every 32 KiB), so a lone answer is one
// system call in the session's own goroutine, with no hand-off to a
// writer goroutine to wait for (which cost a single FETCH more than its
// own work on a busy machine).
type trackedConn struct {
	net.Conn
	l    *trackingListener
	once sync.Once
}

// kill closes the connection at shutdown.
func (c *trackedConn) kill() { c.Close() }

// NetConn is the connection underneath (imapproto reaches the TCP socket
// through it to set TCP_QUICKACK).
func (c *trackedConn) NetConn() net.Conn { return c.Conn }

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// account is the state shared by the sessions of one Mailstore: a hub per
// selected mailbox.
type account struct {
	srv   *Server
	store Mailstore
	refs  int // sessions logged in; guarded by srv.mu

	mu   sync.Mutex
	hubs map[string]*hub

	serial atomic.Uint64 // views selected, for their order

	wireBudget *atomic.Int64 // what the hubs' wire caches may still hold
}

func (s *Server) acquireAccount(st Mailstore) *account {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[st]
	if a == nil {
		a = &account{srv: s, store: st, hubs: map[string]*hub{}, wireBudget: newWireBudget()}
		s.accounts[st] = a
	}
	a.refs++
	return a
}

func (s *Server) releaseAccount(a *account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a.refs--
	if a.refs == 0 && s.accounts[a.store] == a {
		delete(s.accounts, a.store)
	}
}
