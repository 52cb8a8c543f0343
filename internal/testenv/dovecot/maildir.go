package dovecot

import (
	"bytes"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ServeMaildir runs a Dovecot whose one user's mail is the Maildir++
// tree at dir, as a user would point Dovecot at an export of bitmaskd
// (internal/maildir's layout): "/" as the hierarchy separator and the
// listescape plugin, so folder names holding "\2e" read as mailboxes
// holding ".". When the server's processes run as another user (the
// tests run as root), the tree is given to that user first, and the
// directories between the system's temporary directory and dir (a
// test's, 0700) are made searchable by others. Close stops the server
// and removes its own directory, never dir.
func ServeMaildir(dir string) (*Server, error) {
	s, err := New()
	if err != nil {
		return nil, err
	}
	s.Maildir = dir
	if s.chown {
		err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, s.uid, s.gid)
		})
		if err != nil {
			s.Close()
			return nil, err
		}
		tmp := filepath.Clean(os.TempDir())
		for p := filepath.Dir(dir); strings.HasPrefix(p, tmp+string(filepath.Separator)); p = filepath.Dir(p) {
			if fi, err := os.Stat(p); err == nil {
				_ = os.Chmod(p, fi.Mode().Perm()|0o001)
			}
		}
	}
	if err := s.startWith(s.maildirConfig); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// maildirConfig is config plus the namespace and escapes of the layout.
func (s *Server) maildirConfig(port int) string {
	var b strings.Builder
	b.WriteString(s.config(port))
	if s.major > 2 || s.major == 2 && s.minor >= 4 {
		b.WriteString("mailbox_list_storage_escape_char = \"\\\\\"\n")
		b.WriteString("namespace inbox {\n  separator = /\n  inbox = yes\n}\n")
		return b.String()
	}
	b.WriteString("mail_plugins = $mail_plugins listescape\n")
	b.WriteString("namespace inbox {\n  separator = /\n  inbox = yes\n}\n")
	return b.String()
}

// startWith is Start with another configuration.
func (s *Server) startWith(config func(port int) string) error {
	users := filepath.Join(s.Dir, "users")
	if err := os.WriteFile(users, []byte(User+":{PLAIN}"+Password+":::::\n"), 0o600); err != nil {
		return err
	}
	if err := s.own(users); err != nil {
		return err
	}
	var lastErr error
	for range 3 {
		port, err := freePort()
		if err != nil {
			return err
		}
		confPath := filepath.Join(s.Dir, "dovecot.conf")
		if err := os.WriteFile(confPath, []byte(config(port)), 0o600); err != nil {
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
