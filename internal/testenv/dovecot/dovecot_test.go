package dovecot

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
)

// TestStart runs the installed Dovecot with twelve messages and reads
// them back in UID order. It runs only with BITMASK_DOVECOT_TEST=1
// (BITMASK_DOVECOT_TEST=1 go test ./internal/testenv/dovecot/), so the
// tests never need Dovecot.
func TestStart(t *testing.T) {
	if os.Getenv("BITMASK_DOVECOT_TEST") != "1" {
		t.Skip("BITMASK_DOVECOT_TEST=1 runs it against the installed Dovecot")
	}
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	gen := func(i int) []byte {
		return []byte(fmt.Sprintf("From: a@example.org\r\nSubject: message %d\r\n\r\nbody %d\r\n", i, i))
	}
	const n = 12
	if err := s.WriteMaildir(n, gen); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Log(s.Log(20))
		}
		s.Close()
	}()
	if len(s.Pids()) == 0 {
		t.Error("no processes")
	}
	c, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	var got []string
	run := func(tag, cmd string) {
		fmt.Fprintf(c, "%s %s\r\n", tag, cmd)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s: %v (log: %s)", cmd, err, s.Log(5))
			}
			if strings.HasPrefix(l, tag+" ") {
				if !strings.HasPrefix(l, tag+" OK") {
					t.Fatalf("%s: %s (log: %s)", cmd, l, s.Log(5))
				}
				return
			}
			got = append(got, strings.TrimSpace(l))
		}
	}
	r.ReadString('\n')
	run("a", fmt.Sprintf("LOGIN %s %s", User, Password))
	run("b", "SELECT INBOX")
	if !strings.Contains(strings.Join(got, "\n"), fmt.Sprintf("* %d EXISTS", n)) {
		t.Fatalf("SELECT: %q", got)
	}
	got = nil
	run("c", "UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
	var subjects []string
	for _, l := range got {
		if strings.HasPrefix(l, "Subject: ") {
			subjects = append(subjects, l)
		}
	}
	for i, s := range subjects {
		if s != fmt.Sprintf("Subject: message %d", i) {
			t.Fatalf("UID %d has %q; all: %q", i+1, s, subjects)
		}
	}
	if len(subjects) != n {
		t.Fatalf("%d subjects: %q", len(subjects), got)
	}
}
