package imapproto

// OWNED BY the conn helper: conn.go, server.go, tracker.go (and their
// tests). The methods below are the contract with write*.go.

import (
	"bufio"
	"net"
	"sync"

	"github.com/emersion/go-imap/v2"
)

// Conn is one client connection.
type Conn struct {
	srv     *Server
	conn    net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	encMu   sync.Mutex
	enc     *Encoder
	mu      sync.Mutex
	enabled imap.CapSet
}

// Server serves IMAP with Options.
type Server struct {
	opts Options
}

// NetConn is the underlying connection (for its addresses).
func (c *Conn) NetConn() net.Conn { return c.conn }

// Enabled reports whether the client enabled cap (ENABLE; CONDSTORE is
// also enabled by the first command that uses it, RFC 7162 §3.1).
func (c *Conn) Enabled(cap imap.Cap) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.enabled[cap]
	return ok
}

// Bye sends BYE with text and closes the connection; safe from any
// goroutine.
func (c *Conn) Bye(text string) error { panic("not written") }

// beginResponse locks the connection's writer for one or more responses
// (a FETCH response with its literals) and sets the write deadline; end
// it with endResponse, which flushes.
func (c *Conn) beginResponse() *Encoder { panic("not written") }
func (c *Conn) endResponse() error      { panic("not written") }
