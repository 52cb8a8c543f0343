// Package postgres runs a real PostgreSQL server (Debian's packages:
// initdb and postgres from /usr/lib/postgresql/VERSION/bin) for tests.
//
// One server serves a whole test binary: the first Start initialises a
// cluster in a temporary directory and runs it listening only on a unix
// socket in that directory (no TCP port to collide with anything), with
// durability turned off (fsync=off: a test's database is thrown away).
// Every Start gives the test a fresh, empty database, dropped when the
// test ends. The server stops when the test binary's TestMain calls Main
// (or Stop); if the binary dies first, the server gets SIGTERM from the
// kernel (parent-death signal) and exits on its own.
//
// initdb and postgres refuse to run as root: when the tests run as root
// the server runs as the system's postgres user (the one the Debian
// package makes), with the directory given to it.
//
// Tests skip with a clear message when PostgreSQL is not installed,
// unless BITMASK_REQUIRE_PEERS=1 (CI), where they fail.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is the test binary's PostgreSQL.
type Server struct {
	// Dir is the temporary directory: data/ (the cluster), the socket
	// and postgres.log.
	Dir string
	// Socket is the directory of the unix socket (Dir).
	Socket string
	// User is the database superuser the tests connect as.
	User string
	// Version is what postgres --version printed.
	Version string

	cmd    *exec.Cmd
	exited chan struct{}
}

var (
	mu      sync.Mutex
	server  *Server
	startEr error
	dbSeq   atomic.Int64
)

// BinDir is the directory of PostgreSQL's server programs: pg_config
// --bindir's when pg_config is on PATH, else the newest
// /usr/lib/postgresql/*/bin with initdb and postgres.
func BinDir() (string, error) {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		d := strings.TrimSpace(string(out))
		if ok(d) {
			return d, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if ok(d) {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL is not installed (apt-get install postgresql)")
}

func ok(dir string) bool {
	for _, p := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			return false
		}
	}
	return true
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Need skips t when PostgreSQL is not installed (fails it when
// BITMASK_REQUIRE_PEERS=1) and returns the server's directory of
// programs.
func Need(t testing.TB) string {
	t.Helper()
	dir, err := BinDir()
	if err != nil {
		if os.Getenv("BITMASK_REQUIRE_PEERS") == "1" {
			t.Fatalf("%v and BITMASK_REQUIRE_PEERS=1", err)
		}
		t.Skip(err)
	}
	return dir
}

// Start returns the URL of a new, empty database on the test binary's
// server (started at the first call), owned by the superuser. The
// database is dropped when t ends.
func Start(t testing.TB) string {
	t.Helper()
	srv := Shared(t)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("postgres: creating a database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := srv.exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("postgres: dropping the test's database: %v", err)
		}
	})
	return srv.URL(name)
}

// Shared is the test binary's server, started at the first call.
func Shared(t testing.TB) *Server {
	t.Helper()
	bin := Need(t)
	mu.Lock()
	defer mu.Unlock()
	if server == nil && startEr == nil {
		server, startEr = start(bin)
	}
	if startEr != nil {
		t.Fatalf("postgres: %v", startEr)
	}
	return server
}

// URL is the connection URL of database db on the server.
func (s *Server) URL(db string) string {
	q := url.Values{"host": {s.Socket}, "sslmode": {"disable"}}
	return (&url.URL{Scheme: "postgres", User: url.User(s.User), Path: "/" + db, RawQuery: q.Encode()}).String()
}

// Log is the server's log so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "postgres.log"))
	return string(b)
}

func (s *Server) exec(ctx context.Context, sql string) error {
	c, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, sql)
	return err
}

// Main runs the tests of m and stops the server after them: call it
// from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the server (a fast shutdown) and removes its directory.
// Start after Stop starts a new one.
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	if server == nil {
		return
	}
	s := server
	server, startEr = nil, nil
	s.cmd.Process.Signal(syscall.SIGINT) //nolint:errcheck // the exit is seen through exited
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill() //nolint:errcheck
		<-s.exited
	}
	os.RemoveAll(s.Dir)
}

// start initialises a cluster and runs it. As root, initdb and postgres
// run as the postgres user (cred); the directory is made under the
// system's temporary directory (not a test's, whose parents only root
// may enter) and given to that user.
func start(bin string) (*Server, error) {
	removeStale()
	dir, err := os.MkdirTemp("", "bitmask-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, Socket: dir, exited: make(chan struct{})}
	fail := func(err error) (*Server, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fail(fmt.Errorf("running as root and no postgres user to run the server as: %w", err))
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return fail(err)
		}
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		s.User = "postgres"
	} else {
		u, err := user.Current()
		if err != nil {
			return fail(err)
		}
		s.User = u.Username
	}
	run := func(name string, args ...string) *exec.Cmd {
		c := exec.Command(filepath.Join(bin, name), args...)
		c.Dir = dir
		c.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
		c.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		return c
	}
	if out, err := run("postgres", "--version").Output(); err == nil {
		s.Version = strings.TrimSpace(string(out))
	}
	data := filepath.Join(dir, "data")
	if out, err := run("initdb", "-D", data, "-U", s.User, "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions").CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %v\n%s", err, out))
	}
	logf, err := os.OpenFile(filepath.Join(dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fail(err)
	}
	s.cmd = run("postgres", "-D", data,
		"-c", "listen_addresses=",
		"-c", "unix_socket_directories="+dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=32MB",
		"-c", "log_min_messages=warning")
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	// The server goes when the test binary goes, even killed.
	s.cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return fail(fmt.Errorf("postgres: %w", err))
	}
	go func() { s.cmd.Wait(); logf.Close(); close(s.exited) }() //nolint:errcheck // the exit is seen through exited
	// Ready when it answers a query.
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = s.exec(ctx, "SELECT 1")
		cancel()
		if err == nil {
			return s, nil
		}
		select {
		case <-s.exited:
			os.RemoveAll(dir)
			return nil, fmt.Errorf("the server exited at start: %v\n%s", err, s.Log())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.cmd.Process.Kill() //nolint:errcheck
			<-s.exited
			log := s.Log()
			os.RemoveAll(dir)
			return nil, fmt.Errorf("the server did not answer in 60 s: %v\n%s", err, log)
		}
	}
}

// removeStale removes the directories of servers whose test binary
// ended without Main or Stop (the server exited at its parent's death
// but left its files): older than ten minutes, with no live postmaster.
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "bitmask-pg-*"))
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil || time.Since(fi.ModTime()) < 10*time.Minute {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(d, "data", "postmaster.pid")); err == nil {
			first, _, _ := strings.Cut(string(b), "\n")
			if pid, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && syscall.Kill(pid, 0) == nil {
				continue // still running
			}
		}
		os.RemoveAll(d)
	}
}
