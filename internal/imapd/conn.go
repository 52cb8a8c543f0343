package imapd

import (
	"net"
	"os"
	"sync"
	"time"
)

// batchConn coalesces writes. go-imap flushes after every response, so
// UID FETCH 1:* on 100,000 messages would make 100,000 write system calls,
// about half the cost of the command. Here Write copies into a buffer and
// returns; one goroutine per connection writes the buffer out, so the
// responses made while a write is in flight go out together in the next.
// Nothing waits for a timer: a lone response (an IDLE update, a tagged
// OK) is written at once.
//
// At most maxPending bytes wait; a writer beyond that waits for the
// flusher, up to the write deadline go-imap set. Close writes out what is
// pending (for BYE) before closing; kill closes at once.
type batchConn struct {
	net.Conn

	mu       sync.Mutex
	buf      []byte        // waiting to be written
	spare    []byte        // the flusher's previous buffer, for reuse
	drained  chan struct{} // closed when the flusher takes buf
	deadline time.Time     // write deadline asked for by go-imap
	err      error         // first write error; later writes fail with it
	closing  bool

	wake      chan struct{} // data is waiting
	stop      chan struct{} // Close was called
	done      chan struct{} // the flusher has ended
	closeOnce sync.Once
	closeErr  error
}

const (
	maxPending   = 256 << 10
	flushTimeout = 5 * time.Minute        // one write to a client that does not read
	closeFlush   = 2 * time.Second        // what Close allows for the last data
	minDeadline  = 100 * time.Millisecond // floor when go-imap's deadline is near
)

func newBatchConn(c net.Conn) *batchConn {
	b := &batchConn{
		Conn:    c,
		drained: make(chan struct{}),
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go b.flusher()
	return b
}

func (b *batchConn) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		b.mu.Lock()
		if b.err != nil {
			err := b.err
			b.mu.Unlock()
			return written, err
		}
		if b.closing {
			b.mu.Unlock()
			return written, net.ErrClosed
		}
		if room := maxPending - len(b.buf); room > 0 {
			n := min(room, len(p))
			b.buf = append(b.buf, p[:n]...)
			b.mu.Unlock()
			p, written = p[n:], written+n
			select {
			case b.wake <- struct{}{}:
			default:
			}
			continue
		}
		drained, deadline := b.drained, b.deadline
		b.mu.Unlock()
		if err := b.waitRoom(drained, deadline); err != nil {
			return written, err
		}
	}
	return written, nil
}

func (b *batchConn) waitRoom(drained <-chan struct{}, deadline time.Time) error {
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(max(time.Until(deadline), minDeadline))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-drained:
		return nil
	case <-timeout:
		return os.ErrDeadlineExceeded
	case <-b.stop:
		return net.ErrClosed
	}
}

func (b *batchConn) flusher() {
	defer close(b.done)
	for {
		select {
		case <-b.wake:
			b.flush()
		case <-b.stop:
			b.flush()
			return
		}
	}
}

// flush writes out what is waiting.
func (b *batchConn) flush() {
	b.mu.Lock()
	buf := b.buf
	b.buf = b.spare[:0]
	drained := b.drained
	b.drained = make(chan struct{})
	closing := b.closing
	failed := b.err != nil
	b.mu.Unlock()
	close(drained)
	if len(buf) == 0 || failed {
		b.recycle(buf)
		return
	}
	timeout := flushTimeout
	if closing {
		timeout = closeFlush
	}
	b.Conn.SetWriteDeadline(time.Now().Add(timeout))
	_, err := b.Conn.Write(buf)
	b.mu.Lock()
	if err != nil && b.err == nil {
		b.err = err
	}
	b.mu.Unlock()
	b.recycle(buf)
}

func (b *batchConn) recycle(buf []byte) {
	if cap(buf) > 2*maxPending {
		return
	}
	b.mu.Lock()
	b.spare = buf[:0]
	b.mu.Unlock()
}

// SetWriteDeadline bounds how long Write waits for room; the flusher's
// own writes have their own deadline.
func (b *batchConn) SetWriteDeadline(t time.Time) error {
	b.mu.Lock()
	b.deadline = t
	b.mu.Unlock()
	return nil
}

func (b *batchConn) SetDeadline(t time.Time) error {
	b.SetWriteDeadline(t)
	return b.Conn.SetReadDeadline(t)
}

// Close writes out pending data (briefly) and closes.
func (b *batchConn) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closing = true
		b.mu.Unlock()
		close(b.stop)
		<-b.done
		b.closeErr = b.Conn.Close()
	})
	return b.closeErr
}

// kill closes the connection without writing what is pending.
func (b *batchConn) kill() {
	b.mu.Lock()
	if b.err == nil {
		b.err = net.ErrClosed
	}
	b.mu.Unlock()
	b.Conn.Close()
	b.Close()
}

// NetConn is the connection underneath (imapproto reaches the TCP socket
// through it to set TCP_QUICKACK).
func (b *batchConn) NetConn() net.Conn { return b.Conn }
