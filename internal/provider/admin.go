package provider

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/bitmask-go/bitmask/internal/provider/storage"
)

// The admin socket: DATADIR/admin.sock, a unix socket made mode 0600 in
// the 0700 data directory, through which `leapd backup` asks the running
// leapd for a copy of its bbolt store (the process holds the file's
// lock, so nothing else can read it consistently). Connections from
// another user than leapd's own (or root) are closed unanswered.
//
// The protocol is one request per connection: the client writes
// "backup\n"; leapd answers "ok SIZE\n" and SIZE bytes of a bbolt file,
// the store as of one read transaction, or "error MESSAGE\n".

// AdminSocket is the admin socket's name in the data directory.
const AdminSocket = "admin.sock"

// ErrNoAdmin is RequestBackup's error when no leapd serves the admin
// socket of the data directory (none runs, or it was killed and left
// the socket file behind).
var ErrNoAdmin = errors.New("provider: no leapd answers on the admin socket")

// ServeAdmin serves the admin socket of dataDir for st until stop is
// called. Call it only while holding the store (a started provider): a
// socket left by an earlier run is replaced. For a store without online
// backups (PostgreSQL) the socket answers a backup with an error that
// says how to back it up instead.
func ServeAdmin(dataDir string, st storage.Store, log *slog.Logger) (stop func(), err error) {
	b, _ := storage.BackupOf(st) // nil: backups are refused with a reason
	if log == nil {
		log = slog.Default()
	}
	path := filepath.Join(dataDir, AdminSocket)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("provider: admin socket: %w", err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("provider: admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("provider: admin socket: %w", err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[*net.UnixConn]bool{}
	)
	wg.Go(func() {
		for {
			c, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					c.Close()
				}()
				serveAdminConn(c, b, log)
			})
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			ln.Close() // removes the socket file
			mu.Lock()
			for c := range conns {
				c.Close() // a backup cut short: its client sees it
			}
			mu.Unlock()
			wg.Wait()
		})
	}, nil
}

func serveAdminConn(c *net.UnixConn, b storage.Backuper, log *slog.Logger) {
	if !peerAllowed(c) {
		log.Warn("admin: a connection from another user refused")
		return
	}
	req, err := bufio.NewReader(io.LimitReader(c, 64)).ReadString('\n')
	if err != nil {
		return
	}
	if strings.TrimSpace(req) != "backup" {
		fmt.Fprintf(c, "error unknown request\n")
		return
	}
	if b == nil {
		fmt.Fprintf(c, "error this leapd's store is not the embedded bbolt file: back up PostgreSQL and S3 with their own tools (docs/operations.md)\n")
		return
	}
	var sent int64
	err = b.Backup(func(size int64, w io.WriterTo) error {
		if _, err := fmt.Fprintf(c, "ok %d\n", size); err != nil {
			return err
		}
		var err error
		sent, err = w.WriteTo(c)
		return err
	})
	if err != nil {
		log.Error("admin: backup failed", "sent", sent, "err", err)
		return
	}
	log.Info("admin: backup sent", "bytes", sent)
}

// RequestBackup asks the leapd running on dataDir for a consistent copy
// of its store and writes it to w. The copy is complete only when err is
// nil. ErrNoAdmin: no leapd answers (then the file can be copied
// directly, storage.BackupFile).
func RequestBackup(ctx context.Context, dataDir string, w io.Writer) (int64, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", filepath.Join(dataDir, AdminSocket))
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
		return 0, ErrNoAdmin
	}
	if err != nil {
		return 0, fmt.Errorf("provider: admin socket: %w", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if _, err := io.WriteString(c, "backup\n"); err != nil {
		return 0, fmt.Errorf("provider: admin socket: %w", err)
	}
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("provider: admin socket: no answer: %w", err)
	}
	line = strings.TrimSuffix(line, "\n")
	if msg, ok := strings.CutPrefix(line, "error "); ok {
		return 0, fmt.Errorf("provider: leapd refused the backup: %s", msg)
	}
	s, ok := strings.CutPrefix(line, "ok ")
	size, err := strconv.ParseInt(s, 10, 64)
	if !ok || err != nil || size < 0 {
		return 0, fmt.Errorf("provider: admin socket: unexpected answer %q", line)
	}
	n, err := io.Copy(w, io.LimitReader(br, size))
	if err == nil && n != size {
		err = fmt.Errorf("provider: the backup stopped after %d of %d bytes", n, size)
	}
	if err != nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return n, err
}
