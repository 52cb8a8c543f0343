package smtpserver

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ListenerConfig adjusts a Listener.
type ListenerConfig struct {
	// Name prefixes the log messages ("mx", "submission").
	Name string
	// Hostname, when set, is named in the 421 reply to a connection
	// over the limit.
	Hostname string
	// MaxConnections is how many connections may be open at once; the
	// one after that gets 421 and is closed.
	MaxConnections int
	// MaxPerAddress is how many of those connections one client
	// address may hold (an IPv6 client is counted by its /64); the one
	// after that gets 421 and is closed. 0 means DefaultMaxPerAddress,
	// a negative value no cap.
	MaxPerAddress int
	// EvictAfter: when all MaxConnections are taken, a new connection
	// takes the place of the oldest one that has been open at least
	// this long and waits for the client (not in DATA), which is
	// closed; so slow clients that keep a connection alive with a
	// command now and then cannot hold every place for ever. 0 means
	// DefaultEvictAfter, a negative value never.
	EvictAfter time.Duration
	// FinishData lets a DATA command that comes after BeginShutdown
	// still run (until CloseAll). Without it BeginData refuses as soon
	// as the shutdown begins.
	FinishData bool
	// Logger is where refused connections are logged.
	Logger *slog.Logger
}

// Listener limits and tracks the connections of one Serve call of a
// go-smtp server, so that a shutdown can tell a connection waiting for
// a command from one in DATA, and wait for the transactions in DATA.
type Listener struct {
	net.Listener
	cfg ListenerConfig
	sem chan struct{}

	mu    sync.Mutex
	conns map[*Conn]struct{}
	// perAddr counts the open connections of each client address key
	// (addrKey).
	perAddr map[string]int
	// closed: shutting down, no new connections or transactions.
	closed bool
	// dataClosed: no new DATA either.
	dataClosed bool
	// inData counts DATA transactions running, so what they store into
	// is not closed under them when the Serve call returns.
	inData sync.WaitGroup
}

// NewListener wraps ln.
func NewListener(ln net.Listener, cfg ListenerConfig) *Listener {
	return &Listener{
		Listener: ln, cfg: cfg,
		sem:   make(chan struct{}, cfg.MaxConnections),
		conns: map[*Conn]struct{}{}, perAddr: map[string]int{},
	}
}

// DefaultMaxPerAddress is the connections one client address may hold
// at once when ListenerConfig.MaxPerAddress is 0.
const DefaultMaxPerAddress = 10

// DefaultEvictAfter is ListenerConfig.EvictAfter's default: longer than
// a whole transaction of a sender on a sound network takes.
const DefaultEvictAfter = 30 * time.Second

// addrKey is what the per-address cap counts a client by: its IPv4
// address, or the /64 of its IPv6 address (one subscriber's usual
// allocation, so a client cannot escape the cap by hopping addresses
// inside it). Other addresses (unix sockets) are not capped: "".
func addrKey(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return ""
	}
	if v4 := ta.IP.To4(); v4 != nil {
		return v4.String()
	}
	return ta.IP.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// refuse answers 421 on c and closes it, without holding up Accept.
func (l *Listener) refuse(c net.Conn, why string) {
	reply := "421 4.7.0 " + why + ", try again later\r\n"
	if l.cfg.Hostname != "" {
		reply = "421 4.7.0 " + l.cfg.Hostname + " " + why + ", try again later\r\n"
	}
	go func() {
		_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		// With implicit TLS this goes out before the handshake
		// and the client sees a TLS error; it retries either way.
		_, _ = io.WriteString(c, reply)
		c.Close()
	}()
}

// Accept returns the next connection as a *Conn. A connection over the
// limit gets 421 and is closed; after BeginShutdown, Accept returns
// net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := addrKey(c.RemoteAddr())
		if l.overAddressCap(key) {
			l.refuseOverAddressCap(c)
			continue
		}
		select {
		case l.sem <- struct{}{}:
		default:
			// Full: the new connection takes the place of an old
			// one waiting for its client, if there is one.
			if !l.evictOldest() {
				l.cfg.Logger.Warn(l.cfg.Name+": too many connections", "remote", c.RemoteAddr().String())
				l.refuse(c, "too many connections")
				continue
			}
		}
		tc := &Conn{Conn: c, l: l, key: key, opened: time.Now()}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			<-l.sem
			c.Close()
			return nil, net.ErrClosed
		}
		if l.overAddressCapLocked(key) {
			l.mu.Unlock()
			<-l.sem
			l.refuseOverAddressCap(c)
			continue
		}
		if tc.key != "" {
			l.perAddr[tc.key]++
		}
		l.conns[tc] = struct{}{}
		l.mu.Unlock()
		return tc, nil
	}
}

// evictOldest closes the oldest connection open for EvictAfter that
// waits for its client outside DATA, and hands its place under
// MaxConnections to the caller (true), or finds none (false).
func (l *Listener) evictOldest() bool {
	after := l.cfg.EvictAfter
	if after == 0 {
		after = DefaultEvictAfter
	}
	if after < 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var oldest *Conn
	cutoff := time.Now().Add(-after)
	for c := range l.conns {
		if c.busy.Load() != 0 || !c.reading.Load() || c.opened.After(cutoff) {
			continue
		}
		if oldest == nil || c.opened.Before(oldest.opened) {
			oldest = c
		}
	}
	if oldest == nil || !oldest.closed.CompareAndSwap(false, true) {
		return false
	}
	l.forget(oldest)
	_ = oldest.Conn.Close()
	l.cfg.Logger.Warn(l.cfg.Name+": closed the oldest waiting connection for a new one", "remote", oldest.RemoteAddr().String(),
		"open_for", time.Since(oldest.opened).Round(time.Second).String())
	return true
}

// forget drops c from the tracking (l.mu held).
func (l *Listener) forget(c *Conn) {
	delete(l.conns, c)
	if c.key != "" {
		if l.perAddr[c.key]--; l.perAddr[c.key] <= 0 {
			delete(l.perAddr, c.key)
		}
	}
}

// overAddressCap reports whether the client key already holds its
// MaxPerAddress connections.
func (l *Listener) overAddressCap(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.overAddressCapLocked(key)
}

func (l *Listener) overAddressCapLocked(key string) bool {
	max := l.maxPerAddress()
	return key != "" && max > 0 && l.perAddr[key] >= max
}

func (l *Listener) refuseOverAddressCap(c net.Conn) {
	l.cfg.Logger.Warn(l.cfg.Name+": too many connections from one address", "remote", c.RemoteAddr().String(), "limit", l.maxPerAddress())
	l.refuse(c, "too many connections from your address")
}

func (l *Listener) maxPerAddress() int {
	if l.cfg.MaxPerAddress == 0 {
		return DefaultMaxPerAddress
	}
	return l.cfg.MaxPerAddress
}

// BeginShutdown stops taking new connections and transactions:
// ShuttingDown reports true from now on, and, unless
// ListenerConfig.FinishData, BeginData refuses.
func (l *Listener) BeginShutdown() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if !l.cfg.FinishData {
		l.dataClosed = true
	}
}

// ShuttingDown reports whether the shutdown has begun.
func (l *Listener) ShuttingDown() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// BeginData registers a DATA transaction on c (nil if not ours),
// unless the listener takes none any more. Each true return needs an
// EndData.
func (l *Listener) BeginData(c *Conn) bool {
	l.mu.Lock()
	if l.dataClosed {
		l.mu.Unlock()
		return false
	}
	l.inData.Add(1)
	l.mu.Unlock()
	if c != nil {
		c.busy.Add(1)
	}
	return true
}

// EndData ends what BeginData began.
func (l *Listener) EndData(c *Conn) {
	if c != nil {
		c.busy.Add(-1)
	}
	l.inData.Done()
}

// WaitData waits for the DATA transactions running to end.
func (l *Listener) WaitData() { l.inData.Wait() }

// CloseIdle closes the connections that wait for a command (inside
// Read, not in DATA) and returns how many connections are left open.
func (l *Listener) CloseIdle() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		if c.reading.Load() && c.busy.Load() == 0 {
			c.Conn.Close()
		}
	}
	return len(l.conns)
}

// CloseNotInData closes the connections not in DATA, whatever they are
// doing, and returns how many connections are left open.
func (l *Listener) CloseNotInData() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		if c.busy.Load() == 0 {
			c.Conn.Close()
		}
	}
	return len(l.conns)
}

// CloseAll closes every connection and refuses new ones, new
// transactions and new DATA.
func (l *Listener) CloseAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.dataClosed = true
	for c := range l.conns {
		c.Conn.Close()
	}
}

// Conn is one client connection of a Listener. It lets a shutdown tell
// a connection waiting for a command from one in DATA.
type Conn struct {
	net.Conn
	l *Listener

	reading atomic.Bool  // inside Read (for TLS: of the TLS records)
	busy    atomic.Int32 // inside DATA (BeginData)
	closed  atomic.Bool
	key     string // addrKey of the client
	opened  time.Time
}

func (c *Conn) Read(b []byte) (int, error) {
	c.reading.Store(true)
	defer c.reading.Store(false)
	return c.Conn.Read(b)
}

// Close closes the connection and frees its place under the limit.
func (c *Conn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.l.mu.Lock()
		c.l.forget(c)
		c.l.mu.Unlock()
		<-c.l.sem
	}
	return err
}

// ConnOf finds the Listener's *Conn under what go-smtp holds (a
// *tls.Conn after STARTTLS or with implicit TLS), or nil.
func ConnOf(nc net.Conn) *Conn {
	for {
		switch c := nc.(type) {
		case *Conn:
			return c
		case *tls.Conn:
			nc = c.NetConn()
		default:
			return nil
		}
	}
}
