// Package dovecot runs the system's Dovecot IMAP server from a temporary
// directory, for benchmarks that measure bitmaskd side by side with it.
// Nothing outside the directory is touched: the configuration, the
// runtime and state directories, the log, the one user's password file
// and its Maildir all live there, and the server listens on loopback.
//
// It is for benchmarks only; tests do not depend on Dovecot being
// installed.
package dovecot

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// User and Password are the one account the server knows.
const (
	User     = "bench"
	Password = "bench-password"
)

// Server is a Dovecot made by New, running from Start until Close.
type Server struct {
	// Addr is the IMAP listener (127.0.0.1:PORT, plain IMAP, no TLS),
	// set by Start.
	Addr string
	// Maildir is the user's mail location (INBOX is its root).
	Maildir string
	// Version is what `dovecot --version` printed.
	Version string
	// Dir is the temporary directory everything lives in.
	Dir string

	bin          string
	major, minor int
	// runAs is the user the mail and internal processes run as: the
	// current user, or nobody when that is root (Dovecot refuses mail
	// access as root).
	runAs    *user.User
	uid, gid int
	chown    bool
	cmd      *exec.Cmd
	exited   chan struct{}
	err      error // the process's exit, once exited is closed
}

// Binary is the dovecot executable: from PATH, or /usr/sbin/dovecot,
// where Debian installs it (not on an unprivileged user's PATH).
func Binary() (string, error) {
	if p, err := exec.LookPath("dovecot"); err == nil {
		return p, nil
	}
	const sbin = "/usr/sbin/dovecot"
	if _, err := os.Stat(sbin); err == nil {
		return sbin, nil
	}
	return "", errors.New("dovecot is not installed")
}

// Version returns the installed Dovecot's version (such as "2.3.19.1")
// and its major and minor numbers.
func Version(bin string) (full string, major, minor int, err error) {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "", 0, 0, fmt.Errorf("dovecot --version: %w", err)
	}
	full, _, _ = strings.Cut(strings.TrimSpace(string(out)), " ")
	parts := strings.Split(full, ".")
	if len(parts) < 2 {
		return full, 0, 0, fmt.Errorf("dovecot --version: cannot read %q", full)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return full, 0, 0, fmt.Errorf("dovecot --version: cannot read %q", full)
	}
	return full, major, minor, nil
}

// New finds the installed Dovecot and makes a temporary directory with
// an empty Maildir, without starting anything, so the caller can fill
// the Maildir first (WriteMaildir). Close removes the directory.
func New() (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	full, major, minor, err := Version(bin)
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, Version: full, major: major, minor: minor}
	if s.runAs, err = user.Current(); err != nil {
		return nil, err
	}
	if s.runAs.Uid == "0" {
		if s.runAs, err = user.Lookup("nobody"); err != nil {
			return nil, fmt.Errorf("dovecot refuses mail access as root and there is no user nobody: %w", err)
		}
		s.chown = true
	}
	s.uid, _ = strconv.Atoi(s.runAs.Uid)
	s.gid, _ = strconv.Atoi(s.runAs.Gid)
	if s.Dir, err = os.MkdirTemp("", "bitmask-dovecot-"); err != nil {
		return nil, err
	}
	s.Maildir = filepath.Join(s.Dir, "Maildir")
	for _, d := range []string{"", "run", "state", "Maildir", "Maildir/cur", "Maildir/new", "Maildir/tmp"} {
		p := filepath.Join(s.Dir, d)
		if err := os.MkdirAll(p, 0o700); err != nil {
			s.Close()
			return nil, err
		}
		if err := s.own(p); err != nil {
			s.Close()
			return nil, err
		}
	}
	// Started as root, Dovecot's login processes run as its own login
	// user and reach the sockets in run/.
	if err := os.Chmod(s.Dir, 0o711); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// own gives a file to the user Dovecot's processes run as.
func (s *Server) own(p string) error {
	if !s.chown {
		return nil
	}
	return os.Chown(p, s.uid, s.gid)
}

// Start writes a minimal configuration and runs `dovecot -F -c conf` as
// a child process until Close. It returns once the IMAP port accepts
// connections and greets, or with an error that says why Dovecot is
// unavailable.
func (s *Server) Start() error {
	// The password file: user:{PLAIN}password, and no uid, gid or home
	// (mail_uid, mail_gid and the mail location say them).
	users := filepath.Join(s.Dir, "users")
	if err := os.WriteFile(users, []byte(User+":{PLAIN}"+Password+":::::\n"), 0o600); err != nil {
		return err
	}
	if err := s.own(users); err != nil {
		return err
	}
	var lastErr error
	// The port is picked free by the kernel, then handed to Dovecot
	// (which cannot report a port it picked itself); another process
	// may take it in between, so a bind failure is tried again.
	for range 3 {
		port, err := freePort()
		if err != nil {
			return err
		}
		confPath := filepath.Join(s.Dir, "dovecot.conf")
		if err := os.WriteFile(confPath, []byte(s.config(port)), 0o600); err != nil {
			return err
		}
		logPath := filepath.Join(s.Dir, "dovecot.log")
		_ = os.Remove(logPath)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.exited = make(chan struct{})
		s.cmd = exec.Command(s.bin, "-F", "-c", confPath)
		var out bytes.Buffer
		s.cmd.Stdout = &out
		s.cmd.Stderr = &out
		if err := s.cmd.Start(); err != nil {
			return fmt.Errorf("dovecot: %w", err)
		}
		go func() { s.err = s.cmd.Wait(); close(s.exited) }()
		err = s.waitReady(30 * time.Second)
		if err == nil {
			return nil
		}
		s.stop()
		log, _ := os.ReadFile(logPath)
		log = append(out.Bytes(), log...)
		lastErr = fmt.Errorf("%w: %s", err, lastLines(log, 3))
		if !bytes.Contains(log, []byte("in use")) {
			break
		}
	}
	return lastErr
}

// config is dovecot.conf for the installed version: 2.4 renamed many
// settings and wants the configuration version first.
func (s *Server) config(port int) string {
	var b strings.Builder
	v24 := s.major > 2 || s.major == 2 && s.minor >= 4
	if v24 {
		b.WriteString("dovecot_config_version = 2.4.0\ndovecot_storage_version = 2.4.0\n")
	}
	fmt.Fprintf(&b, "base_dir = %s\n", filepath.Join(s.Dir, "run"))
	fmt.Fprintf(&b, "state_dir = %s\n", filepath.Join(s.Dir, "state"))
	fmt.Fprintf(&b, "log_path = %s\n", filepath.Join(s.Dir, "dovecot.log"))
	b.WriteString("protocols = imap\nlisten = 127.0.0.1\nssl = no\nauth_mechanisms = plain login\n")
	u := s.runAs
	fmt.Fprintf(&b, "mail_uid = %s\nmail_gid = %s\nfirst_valid_uid = %s\nfirst_valid_gid = %s\n", u.Uid, u.Gid, u.Uid, u.Gid)
	// Dovecot's own processes (auth reads the password file) run as
	// that user too. Unprivileged, so do the login processes; as root
	// they keep Dovecot's own login user (they must not run as root).
	fmt.Fprintf(&b, "default_internal_user = %s\n", u.Username)
	if g, err := user.LookupGroupId(u.Gid); err == nil {
		fmt.Fprintf(&b, "default_internal_group = %s\n", g.Name)
	}
	if !s.chown {
		fmt.Fprintf(&b, "default_login_user = %s\n", u.Username)
	}
	users := filepath.Join(s.Dir, "users")
	if v24 {
		b.WriteString("auth_allow_cleartext = yes\n")
		fmt.Fprintf(&b, "mail_driver = maildir\nmail_path = %s\n", s.Maildir)
		fmt.Fprintf(&b, "passdb passwd-file {\n  passwd_file_path = %s\n}\n", users)
		fmt.Fprintf(&b, "userdb passwd-file {\n  passwd_file_path = %s\n}\n", users)
	} else {
		b.WriteString("disable_plaintext_auth = no\n")
		fmt.Fprintf(&b, "mail_location = maildir:%s\n", s.Maildir)
		fmt.Fprintf(&b, "passdb {\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%%u %s\n}\n", users)
		fmt.Fprintf(&b, "userdb {\n  driver = passwd-file\n  args = username_format=%%u %s\n}\n", users)
	}
	// No chroot, which needs root, so the same configuration runs
	// either way; one IMAP listener on the picked port, no IMAPS.
	fmt.Fprintf(&b, "service imap-login {\n  chroot =\n  inet_listener imap {\n    port = %d\n  }\n  inet_listener imaps {\n    port = 0\n  }\n}\n", port)
	b.WriteString("service anvil {\n  chroot =\n}\n")
	return b.String()
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls the port until it greets with "* OK", the process
// exits or logs a fatal error, or the timeout passes.
func (s *Server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			line, rerr := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if rerr == nil && strings.HasPrefix(line, "* OK") {
				return nil
			}
			if rerr == nil {
				return fmt.Errorf("dovecot greeted with %q", strings.TrimSpace(line))
			}
		}
		if log, _ := os.ReadFile(filepath.Join(s.Dir, "dovecot.log")); bytes.Contains(log, []byte("Fatal: ")) {
			return errors.New("dovecot logged a fatal error")
		}
		select {
		case <-s.exited:
			return fmt.Errorf("dovecot exited: %v", s.err)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dovecot did not accept on %s within %v", s.Addr, timeout)
		}
	}
}

// stop ends the running server (SIGINT, then SIGKILL if it lingers)
// and waits for it.
func (s *Server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// Close stops the server if it runs and removes its directory.
func (s *Server) Close() {
	s.stop()
	if s.Dir != "" {
		_ = os.RemoveAll(s.Dir)
	}
}

// Pids returns the master process and all its descendants (login,
// auth, imap session processes and the rest).
func (s *Server) Pids() []int {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	parent := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(st, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(st[i+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		parent[pid] = ppid
	}
	root := s.cmd.Process.Pid
	var out []int
	for pid := range parent {
		for p, hops := pid, 0; p > 1 && hops < 64; p, hops = parent[p], hops+1 {
			if p == root {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// Log returns the last lines of Dovecot's log.
func (s *Server) Log(lines int) string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "dovecot.log"))
	return lastLines(b, lines)
}

func lastLines(b []byte, n int) string {
	ls := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, " | ")
}

// WriteMaildir writes messages 0..n-1 (made by gen) straight into
// Maildir/cur, as a delivery agent would have and a client then seen,
// before Start. The names are "<time>.M0P1Q<i>.bench,S=<size>,W=<size>:2,"
// with the times one second apart, so Dovecot, which numbers new files
// in the order of those times, gives message i the UID i+1. The
// messages keep their CRLF line ends, so the virtual size W is the file
// size. The machine's cores write in parallel.
func (s *Server) WriteMaildir(n int, gen func(i int) []byte) error {
	cur := filepath.Join(s.Maildir, "cur")
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	workers := max(1, min(8, n))
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := w; i < n; i += workers {
				raw := gen(i)
				name := fmt.Sprintf("%d.M0P1Q%d.bench,S=%d,W=%d:2,", base+int64(i), i, len(raw), len(raw))
				p := filepath.Join(cur, name)
				if err := os.WriteFile(p, raw, 0o600); err != nil {
					errs <- err
					return
				}
				if err := s.own(p); err != nil {
					errs <- err
					return
				}
				t := time.Unix(base+int64(i), 0)
				if err := os.Chtimes(p, t, t); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	var first error
	for range workers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}
