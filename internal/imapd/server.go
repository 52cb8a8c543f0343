package imapd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/bitmask-go/bitmask/internal/recovered"
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

// capabilities advertised. With IMAP4rev2 listed, go-imap also advertises
// to IMAP4rev1 clients what IMAP4rev2 includes (NAMESPACE, UNSELECT,
// UIDPLUS, ESEARCH, SEARCHRES, ENABLE, IDLE, SASL-IR, LIST-EXTENDED,
// LIST-STATUS, MOVE, LITERAL-, STATUS=SIZE, CHILDREN), and APPENDLIMIT
// comes from Session.AppendLimit.
//
// LITERAL+ is deliberately absent: go-imap refuses an APPEND over the
// limit before reading its literal, and with a non-synchronizing literal
// the client has already sent the message, whose lines would then be read
// as commands. LITERAL- (implied) keeps non-synchronizing literals to
// 4 KiB, which is all LOGIN and small commands need.
var capabilities = imap.CapSet{
	imap.CapIMAP4rev1:      {},
	imap.CapIMAP4rev2:      {},
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
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			if !group.add() {
				return nil, nil, &imap.Error{Type: imap.StatusResponseTypeBye, Text: "Server shutting down"}
			}
			return guarded{s.newSession(c, group.done)}, nil, nil
		},
		Caps:         capabilities,
		Logger:       printfLogger{s.log},
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
	tc := &trackedConn{batchConn: newBatchConn(c), l: l}
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

type trackedConn struct {
	*batchConn
	l    *trackingListener
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.batchConn.Close()
}

// printfLogger passes go-imap's log lines to slog. The panics go-imap
// recovers itself (outside the guarded commands: it then closes that
// connection) are errors, logged without the panic's text.
type printfLogger struct{ log *slog.Logger }

func (l printfLogger) Printf(format string, args ...any) {
	if what, _, ok := strings.Cut(format, ":"); ok && strings.HasPrefix(format, "panic") && len(args) == 2 {
		stack, _ := args[1].([]byte)
		l.log.Error("imapd: "+what+"; connection closed", "panic", recovered.Describe(args[0]), "stack", string(stack))
		return
	}
	l.log.Info("imapd: " + fmt.Sprintf(format, args...))
}

// account is the state shared by the sessions of one Mailstore: a hub per
// selected mailbox.
type account struct {
	srv   *Server
	store Mailstore
	refs  int // sessions logged in; guarded by srv.mu

	mu   sync.Mutex
	hubs map[string]*hub
}

func (s *Server) acquireAccount(st Mailstore) *account {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[st]
	if a == nil {
		a = &account{srv: s, store: st, hubs: map[string]*hub{}}
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
