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
		select {
		case l.sem <- struct{}{}:
		default:
			l.cfg.Logger.Warn(l.cfg.Name+": too many connections", "remote", c.RemoteAddr().String())
			l.refuse(c, "too many connections")
			continue
		}
		tc := &Conn{Conn: c, l: l, key: addrKey(c.RemoteAddr())}
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			<-l.sem
			c.Close()
			return nil, net.ErrClosed
		}
		if max := l.maxPerAddress(); tc.key != "" && max > 0 && l.perAddr[tc.key] >= max {
			l.mu.Unlock()
			<-l.sem
			l.cfg.Logger.Warn(l.cfg.Name+": too many connections from one address", "remote", c.RemoteAddr().String(), "limit", max)
			l.refuse(c, "too many connections from your address")
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
		delete(c.l.conns, c)
		if c.key != "" {
			if c.l.perAddr[c.key]--; c.l.perAddr[c.key] <= 0 {
				delete(c.l.perAddr, c.key)
			}
		}
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
