package imapproto

// OWNED BY the conn helper.

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Server serves IMAP with Options: each connection runs in a goroutine of
// its own with a Session from Options.NewSession.
type Server struct {
	opts      Options
	log       *slog.Logger
	extraCaps []imap.Cap // Options.Caps beyond the layer's own

	mu     sync.Mutex
	closed bool
	lns    map[net.Listener]struct{}
	conns  map[*Conn]struct{}

	// preAuth: the connections waiting to log in, with when each
	// connected (under mu).
	preAuth map[*Conn]time.Time
}

// takePreAuth counts a new connection as waiting to log in. When
// Options.MaxPreAuth of them already are, the one that has waited
// longest is closed to make room: connections that never log in (a
// stuck or hostile local program) cannot keep a mail client out, which
// logs in within moments of connecting.
func (s *Server) takePreAuth(c *Conn) {
	limit := s.opts.MaxPreAuth
	if limit <= 0 {
		limit = DefaultMaxPreAuth
	}
	s.mu.Lock()
	var oldest *Conn
	if len(s.preAuth) >= limit {
		for o, t := range s.preAuth {
			if oldest == nil || t.Before(s.preAuth[oldest]) {
				oldest = o
			}
		}
		delete(s.preAuth, oldest)
	}
	if s.preAuth == nil {
		s.preAuth = map[*Conn]time.Time{}
	}
	s.preAuth[c] = time.Now()
	s.mu.Unlock()
	if oldest != nil {
		s.log.Debug("imapproto: too many connections waiting to log in; the oldest closed")
		go oldest.Bye("Too many connections waiting to log in")
	}
}

// leavePreAuth stops counting c among the connections waiting to log in.
func (s *Server) leavePreAuth(c *Conn) {
	s.mu.Lock()
	delete(s.preAuth, c)
	s.mu.Unlock()
}

func (s *Server) preAuthTimeout() time.Duration {
	if s.opts.PreAuthTimeout > 0 {
		return s.opts.PreAuthTimeout
	}
	return DefaultPreAuthTimeout
}

// New makes a server. opts is copied; NewSession must be set.
func New(opts *Options) *Server {
	s := &Server{opts: *opts, lns: map[net.Listener]struct{}{}, conns: map[*Conn]struct{}{}}
	s.log = s.opts.Logger
	if s.log == nil {
		s.log = slog.Default()
	}
	s.extraCaps = extraCaps(s.opts.Caps)
	return s
}

// Serve accepts connections on ln and serves each in a goroutine. It
// returns nil when ln is closed (by the caller or by Close), or the
// listener's error.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// A passing failure (out of file descriptors): wait a
			// little and go on, as net/http does.
			var ne net.Error
			if (errors.As(err, &ne) && ne.Timeout()) || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ECONNABORTED) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("imapproto: accept failed; retrying", "err", err, "wait", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		go s.ServeConn(nc)
	}
}

// ServeConn serves one connection until it ends, and closes it.
func (s *Server) ServeConn(nc net.Conn) {
	c := newConn(s, nc)
	if !s.track(c) {
		_ = nc.Close()
		return
	}
	defer s.untrack(c)
	c.serve()
}

func (s *Server) track(c *Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

// Close stops the listeners Serve is on and ends every connection
// (without BYE: the callers that want one say it with Conn.Bye first).
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	var err error
	for ln := range s.lns {
		if e := ln.Close(); e != nil && err == nil && !errors.Is(e, net.ErrClosed) {
			err = e
		}
	}
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.closeNet()
	}
	return err
}
