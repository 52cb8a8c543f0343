package smtpserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// A Spool receives message bodies (DATA) for one or more SMTP servers
// and bounds what they cost: the first InMemory bytes of a message are
// kept in memory only while the bytes held in memory by all messages
// together stay under MemoryBudget; the rest, and every message past
// that, goes to a temporary file in Dir (mode 0600, removed when the
// Body is closed), and the files together may hold at most DiskLimit
// bytes. A message is only read back into memory whole (Body.Bytes)
// when the budget has room for it, so a thousand slow senders cost disk
// while they send, and their messages are processed a budget's worth at
// a time.
type Spool struct {
	cfg    SpoolConfig
	budget *budget
	disk   atomic.Int64 // bytes in spool files
}

// SpoolConfig adjusts a Spool. The zero value is usable.
type SpoolConfig struct {
	// Dir holds the spool files (made 0700 if missing). Default: the
	// system's temporary directory.
	Dir string
	// InMemory is how much of one message may stay in memory while it
	// is received (default 1 MiB).
	InMemory int64
	// MemoryBudget bounds the bytes of message bodies held in memory
	// by all sessions at once (default 256 MiB). Body.Bytes of a message
	// bigger than the budget waits for the whole budget.
	MemoryBudget int64
	// DiskLimit bounds the bytes in spool files at once (default 4
	// GiB); a message that would go past it gets 452 4.3.1.
	DiskLimit int64
	// Wait bounds how long Body.Bytes waits for room in the budget
	// (default 2 minutes); then the message gets 452 4.3.1.
	Wait time.Duration
}

// Spool defaults.
const (
	DefaultInMemory     = 1 << 20
	DefaultMemoryBudget = 256 << 20
	DefaultDiskLimit    = 4 << 30
	DefaultSpoolWait    = 2 * time.Minute
)

// ErrNoRoom is the reply when the spool (memory budget and disk limit
// alike) has no room for a message now.
var ErrNoRoom = Reply(452, smtp.EnhancedCode{4, 3, 1}, "Insufficient system storage, try again later")

// NewSpool makes a Spool.
func NewSpool(cfg SpoolConfig) *Spool {
	if cfg.Dir == "" {
		cfg.Dir = os.TempDir()
	}
	if cfg.InMemory <= 0 {
		cfg.InMemory = DefaultInMemory
	}
	if cfg.MemoryBudget <= 0 {
		cfg.MemoryBudget = DefaultMemoryBudget
	}
	if cfg.InMemory > cfg.MemoryBudget {
		cfg.InMemory = cfg.MemoryBudget
	}
	if cfg.DiskLimit <= 0 {
		cfg.DiskLimit = DefaultDiskLimit
	}
	if cfg.Wait <= 0 {
		cfg.Wait = DefaultSpoolWait
	}
	return &Spool{cfg: cfg, budget: newBudget(cfg.MemoryBudget)}
}

// InUse reports the bytes held in memory under the budget and the bytes
// in spool files now.
func (sp *Spool) InUse() (memory, disk int64) {
	return sp.budget.inUse(), sp.disk.Load()
}

// Body is one received message: in memory, or in a spool file.
type Body struct {
	sp   *Spool
	size int64
	mem  []byte // the message when it is in memory
	held int64  // budget held for mem
	f    *os.File
	disk int64 // bytes counted against the disk limit
	// taken: Bytes or BytesWith has given the message (and taken its
	// budget); later calls give the same slice and take nothing more.
	taken bool
}

// Receive reads a message of at most max bytes from r (one more tells a
// message that is too big: ErrTooBig). It never allocates from what the
// client announced. The Body must be closed.
func (sp *Spool) Receive(r io.Reader, max int64) (*Body, error) {
	b := &Body{sp: sp}
	r = io.LimitReader(r, max+1)
	// The in-memory part, if the budget has room for it now.
	inMem := min(sp.cfg.InMemory, max+1)
	if sp.budget.tryAcquire(inMem) {
		b.held = inMem
		buf, err := readUpTo(r, inMem)
		b.size = int64(len(buf))
		if err != nil {
			b.Close()
			return nil, receiveErr(err)
		}
		if b.size < inMem {
			// All of it. Keep the bytes, hand back the budget
			// they do not use.
			b.mem = buf
			b.shrink(int64(cap(buf)))
			return b, b.checkSize(max)
		}
		if err := b.toFile(buf); err != nil {
			b.Close()
			return nil, err
		}
		sp.budget.release(b.held)
		b.held = 0
	} else if err := b.toFile(nil); err != nil {
		return nil, err
	}
	if err := b.copyToFile(r); err != nil {
		b.Close()
		return nil, err
	}
	return b, b.checkSize(max)
}

// readUpTo reads r to its end or n bytes, in a buffer that grows as the
// bytes come (never beyond n).
func readUpTo(r io.Reader, n int64) ([]byte, error) {
	buf := make([]byte, 0, min(n, 4096))
	for int64(len(buf)) < n {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), min(n, int64(2*cap(buf))))
			copy(nb, buf)
			buf = nb
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// shrink keeps held at n (n <= held).
func (b *Body) shrink(n int64) {
	if n < b.held {
		b.sp.budget.release(b.held - n)
		b.held = n
	}
}

func (b *Body) checkSize(max int64) error {
	if b.size > max {
		b.Close()
		return ErrTooBig
	}
	return nil
}

func receiveErr(err error) error {
	if errors.Is(err, smtp.ErrDataTooLarge) {
		return ErrTooBig
	}
	if errors.Is(err, smtp.ErrTooLongLine) {
		return ErrLineTooLong
	}
	return err
}

// toFile opens the spool file and writes first into it.
func (b *Body) toFile(first []byte) error {
	if err := os.MkdirAll(b.sp.cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	f, err := os.CreateTemp(b.sp.cfg.Dir, "smtp-*.spool") // mode 0600
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	// Unlinked at once where the system allows it, so a crash leaves
	// nothing behind; Close removes it otherwise.
	_ = os.Remove(f.Name())
	b.f = f
	if _, err := b.write(first); err != nil {
		return err
	}
	return nil
}

// write appends p to the spool file within the disk limit.
func (b *Body) write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n := int64(len(p))
	if b.sp.disk.Add(n) > b.sp.cfg.DiskLimit {
		b.sp.disk.Add(-n)
		return 0, ErrNoRoom
	}
	b.disk += n
	w, err := b.f.Write(p)
	if err != nil {
		return w, fmt.Errorf("spool: %w", err)
	}
	return w, nil
}

// copyToFile appends what is left of r to the spool file.
func (b *Body) copyToFile(r io.Reader) error {
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			b.size += int64(n)
			if _, werr := b.write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return receiveErr(err)
		}
	}
}

// Size is the message's size in bytes.
func (b *Body) Size() int64 { return b.size }

// OnDisk reports whether the message is in a spool file.
func (b *Body) OnDisk() bool { return b.f != nil }

// Reader reads the message from its start, without taking it into
// memory.
func (b *Body) Reader() io.Reader {
	if b.f == nil {
		return bytes.NewReader(b.mem)
	}
	return io.NewSectionReader(b.f, 0, b.size)
}

// Bytes is the whole message in memory. A message in a spool file is
// read back once the memory budget has room for it (for at most
// SpoolConfig.Wait, else ErrNoRoom); the bytes count against the budget
// until Close. Bytes returns the same slice each time.
func (b *Body) Bytes(ctx context.Context) ([]byte, error) {
	return b.BytesWith(ctx, 0)
}

// BytesWith is Bytes holding extra bytes more of the budget until Close,
// for what the caller makes of the message (the MX: a ciphertext as
// large). The message (when it comes from a spool file) and extra are
// taken in one wait, so sessions never hold half and wait for the rest
// of each other's; a Body never waits for more than the whole budget
// with what it holds already. Past SpoolConfig.Wait: ErrNoRoom.
func (b *Body) BytesWith(ctx context.Context, extra int64) ([]byte, error) {
	if b.taken {
		return b.mem, nil
	}
	fromFile := b.mem == nil && b.f != nil
	need := max(extra, 0)
	if fromFile {
		need += b.size
	}
	if need = min(need, b.sp.budget.total-b.held); need > 0 {
		wctx, cancel := context.WithTimeout(ctx, b.sp.cfg.Wait)
		defer cancel()
		n, err := b.sp.budget.acquire(wctx, need)
		if err != nil {
			return nil, ErrNoRoom
		}
		b.held += n
	}
	if fromFile {
		mem := make([]byte, b.size)
		if _, err := b.f.ReadAt(mem, 0); err != nil && !(err == io.EOF && b.size == 0) {
			return nil, fmt.Errorf("spool: %w", err)
		}
		b.mem = mem
	}
	b.taken = true
	return b.mem, nil
}

// Close frees the memory budget and removes the spool file.
func (b *Body) Close() error {
	if b == nil {
		return nil
	}
	b.mem = nil
	if b.held > 0 {
		b.sp.budget.release(b.held)
		b.held = 0
	}
	if b.f != nil {
		name := b.f.Name()
		_ = b.f.Close()
		_ = os.Remove(name)
		b.f = nil
	}
	if b.disk > 0 {
		b.sp.disk.Add(-b.disk)
		b.disk = 0
	}
	return nil
}

// budget is a counting semaphore on bytes. A request bigger than the
// whole budget takes the whole budget.
type budget struct {
	mu      sync.Mutex
	total   int64
	used    int64
	changed chan struct{} // closed and replaced at each release
}

func newBudget(total int64) *budget {
	return &budget{total: total, changed: make(chan struct{})}
}

func (b *budget) tryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	n = min(n, b.total)
	if b.used+n > b.total {
		return false
	}
	b.used += n
	return true
}

// acquire waits until n bytes (at most the total) are free and takes
// them; it returns how many it took.
func (b *budget) acquire(ctx context.Context, n int64) (int64, error) {
	n = min(n, b.total)
	for {
		b.mu.Lock()
		if b.used+n <= b.total {
			b.used += n
			b.mu.Unlock()
			return n, nil
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

func (b *budget) release(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	close(b.changed)
	b.changed = make(chan struct{})
}

func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
