package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/bitmask-go/bitmask/internal/provider"
	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/providerapi"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/internal/testenv/postgres"
)

// startForBackup is a provider on dir with its admin socket, as leapd
// runs it, with one account.
func startForBackup(t *testing.T, dir string) (*provider.Provider, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p, err := provider.Start(ctx, provider.Config{
		DataDir:      dir,
		Logger:       testenv.Logger(t),
		API:          httpapi.Config{Domain: killDomain},
		Listen:       provider.Addrs{API: "127.0.0.1:0"},
		NoSubmission: true,
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	stopAdmin := serveAdmin(dir, p)
	stop := sync.OnceFunc(func() {
		cancel()
		_ = p.Wait()
		stopAdmin()
	})
	t.Cleanup(stop)
	return p, stop
}

// writeDocs pushes one document at a time for login until stop is
// closed; acked is how many pushes were answered (doc i is "d<i>").
// ready is closed once 50 were.
func writeDocs(t *testing.T, st storage.Store, login string, acked *atomic.Int64, ready chan<- struct{}, stop <-chan struct{}) func() {
	var wg sync.WaitGroup
	wg.Go(func() {
		readyOnce := sync.OnceFunc(func() { close(ready) })
		defer readyOnce() // also when it fails early
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := fmt.Sprintf("d%d", i)
			res, err := st.PushDocs(context.Background(), login, []providerapi.DocPush{{ID: id, Rev: 1, Ciphertext: bytes.Repeat([]byte{byte(i)}, 512)}})
			if err != nil || res[0].Status != providerapi.PushOK {
				t.Errorf("push %s: %v %v", id, err, res)
				return
			}
			acked.Store(int64(i + 1))
			if i+1 == 50 {
				readyOnce()
			}
		}
	})
	return wg.Wait
}

// checkCopy opens a backup as a store and returns its documents, each
// checked against what was pushed.
func checkCopy(t *testing.T, path, login string) map[string]bool {
	t.Helper()
	if err := storage.CheckBoltFile(path); err != nil {
		t.Fatal(err)
	}
	st, err := storage.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	docs := map[string]bool{}
	var since uint64
	for {
		ch, last, more, err := st.Changes(context.Background(), login, since, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ch {
			var i int
			if _, err := fmt.Sscanf(d.ID, "d%d", &i); err != nil || !bytes.Equal(d.Ciphertext, bytes.Repeat([]byte{byte(i)}, 512)) {
				t.Fatalf("the copy has doc %s with %d bytes of something else", d.ID, len(d.Ciphertext))
			}
			docs[d.ID] = true
		}
		since = last
		if !more {
			return docs
		}
	}
}

// TestBackupWhileWriting: `leapd backup` of a running provider while a
// writer pushes documents one transaction after another: the copy comes
// through the admin socket, opens with bbolt and passes its check, and
// holds every push answered before the backup started, with no gap
// (the copy is one transaction's view). Then the same of the stopped
// store, read from the file.
func TestBackupWhileWriting(t *testing.T) {
	dir := t.TempDir()
	p, stop := startForBackup(t, dir)
	if fi, err := os.Stat(filepath.Join(dir, provider.AdminSocket)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket: %v %v", fi.Mode(), err)
	}
	ctx := t.Context()
	if err := p.Store.CreateUser(ctx, &storage.User{Login: "bea", Created: time.Now()}, ""); err != nil {
		t.Fatal(err)
	}
	var acked atomic.Int64
	stopW, ready := make(chan struct{}), make(chan struct{})
	wait := writeDocs(t, p.Store, "bea", &acked, ready, stopW)
	<-ready // a store with something in it, and writes going on
	if t.Failed() {
		t.FailNow()
	}
	before := acked.Load()
	out := filepath.Join(t.TempDir(), "leapd.db.bak")
	var sb strings.Builder
	if err := backup(ctx, []string{"-data", dir, "-o", out}, &sb); err != nil {
		t.Fatal(err)
	}
	after := acked.Load()
	close(stopW)
	wait()
	if !strings.Contains(sb.String(), "from the running leapd") {
		t.Fatalf("backup said %q", sb.String())
	}
	docs := checkCopy(t, out, "bea")
	n := int64(len(docs))
	if n < before || n > after+1 {
		t.Fatalf("the copy has %d documents; %d were answered before the backup started, %d when it ended", n, before, after)
	}
	for i := range n {
		if !docs[fmt.Sprintf("d%d", i)] {
			t.Fatalf("the copy has %d documents but not d%d", n, i)
		}
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi.Mode(), err)
	}
	t.Logf("backup of a store being written: %d documents (%d answered before, %d after); %s", n, before, after, strings.TrimSpace(sb.String()))

	// Stopped: the socket is gone, the file is read directly.
	stop()
	if _, err := os.Stat(filepath.Join(dir, provider.AdminSocket)); !os.IsNotExist(err) {
		t.Fatalf("admin socket left after a clean stop: %v", err)
	}
	sb.Reset()
	if err := backup(ctx, []string{"-data", dir, "-o", out}, &sb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), "from the stopped store") {
		t.Fatalf("backup said %q", sb.String())
	}
	if got := len(checkCopy(t, out, "bea")); int64(got) != acked.Load() {
		t.Fatalf("the copy of the stopped store has %d documents, want %d", got, acked.Load())
	}
}

// TestBackupBadInput: no -o, a data directory without a store, and a
// store held by a process that serves no admin socket each fail with a
// clear error and leave the target file as it was.
func TestBackupBadInput(t *testing.T) {
	ctx := t.Context()
	if err := backup(ctx, []string{"-data", t.TempDir()}, &strings.Builder{}); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Fatalf("no -o: %v", err)
	}
	out := filepath.Join(t.TempDir(), "keep.bak")
	if err := os.WriteFile(out, []byte("an older backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	if err := backup(ctx, []string{"-data", empty, "-o", out}, &strings.Builder{}); err == nil {
		t.Fatal("a backup of a directory without a store succeeded")
	}
	if _, err := os.Stat(filepath.Join(empty, "leapd.db")); !os.IsNotExist(err) {
		t.Fatalf("the backup made a store: %v", err)
	}
	// Held without an admin socket (a leapd from before backups).
	held := t.TempDir()
	db, err := bolt.Open(filepath.Join(held, "leapd.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = backup(ctx, []string{"-data", held, "-o", out}, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "admin socket") {
		t.Fatalf("held store: %v", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "an older backup" {
		t.Fatalf("the older backup was replaced: %q", b)
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
}

// TestBackupAfterKill: a leapd killed with -9 leaves its admin socket
// behind with nobody listening; the backup sees that and copies the
// file.
func TestBackupAfterKill(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	st, err := storage.OpenBolt(filepath.Join(dir, "leapd.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateUser(ctx, &storage.User{Login: "bea", Created: time.Now()}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PushDocs(ctx, "bea", []providerapi.DocPush{{ID: "d0", Rev: 1, Ciphertext: bytes.Repeat([]byte{0}, 512)}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, provider.AdminSocket), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // as the kernel closes it at kill -9: the file stays
	out := filepath.Join(t.TempDir(), "b.db")
	var sb strings.Builder
	if err := backup(ctx, []string{"-data", dir, "-o", out}, &sb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), "from the stopped store") {
		t.Fatalf("backup said %q", sb.String())
	}
	if docs := checkCopy(t, out, "bea"); !docs["d0"] || len(docs) != 1 {
		t.Fatalf("the copy has %v", docs)
	}
}

// TestAdminSocketRefusesOtherUsers: another local user cannot connect
// to the admin socket (mode 0600 in the 0700 data directory), and even
// with the modes loosened by mistake, leapd closes a connection from
// another user unanswered (SO_PEERCRED). The other user is a python3
// client run as nobody.
func TestAdminSocketRefusesOtherUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runs a client as another user: run as root")
	}
	// The system's python3, which nobody can run (not one under
	// root's home).
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Skip("/usr/bin/python3 is not installed (the other user's client)")
	}
	dir := t.TempDir()
	startForBackup(t, dir)
	sock := filepath.Join(dir, provider.AdminSocket)
	probe := func() string {
		t.Helper()
		cmd := exec.Command(py, "-c", `
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect:", e.strerror); sys.exit(0)
try:
    s.sendall(b"backup\n")
    print("answer:", repr(s.recv(64)))
except OSError:
    print("answer: b''")  # closed before the request was read
`, sock)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("probe: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	// Every directory on the way open to others: only the socket's own
	// mode and the peer check stand.
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if got := probe(); got != "connect: Permission denied" {
		t.Fatalf("another user against the 0600 socket: %s", got)
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	if got := probe(); got != "answer: b''" {
		t.Fatalf("another user against a socket opened to all: %s", got)
	}
}

// TestBackupRefusedOnPostgres: a leapd on PostgreSQL answers `leapd
// backup` with an error saying how to back it up instead, and the
// target file is left alone.
func TestBackupRefusedOnPostgres(t *testing.T) {
	postgres.Need(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	p, err := provider.Start(ctx, provider.Config{
		DataDir:      dir,
		Logger:       testenv.Logger(t),
		API:          httpapi.Config{Domain: killDomain, StoreURL: postgres.Start(t) + "&migrate=1"},
		Listen:       provider.Addrs{API: "127.0.0.1:0"},
		NoSubmission: true,
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	defer func() { cancel(); _ = p.Wait() }()
	defer serveAdmin(dir, p)()
	out := filepath.Join(t.TempDir(), "b.db")
	err = backup(t.Context(), []string{"-data", dir, "-o", out}, &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "not the embedded bbolt file") {
		t.Fatalf("backup of a leapd on PostgreSQL: %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("a backup file was made: %v", err)
	}
}
