package imapd

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/docsync"
	"github.com/bitmask-go/bitmask/internal/localstore/localstoretest"
	"github.com/bitmask-go/bitmask/internal/mailstore"
)

// realStore opens a *mailstore.Store on a fresh local store, as the daemon
// builds one (without a provider: nothing is pushed).
func realStore(t testing.TB) *mailstore.Store {
	t.Helper()
	st, keys := localstoretest.Open(t)
	log := slog.New(slog.DiscardHandler)
	ms, err := mailstore.Open(docsync.New(st, nil, keys, testUser, log), st, keys, Indexer, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ms.Close) // before the local store closes (cleanups run last-in first-out)
	return ms
}

// response reads one response from a raw connection, with its literals
// inlined: the line as read, and the literals in order.
func (rc *rawConn) response() (line string, literals [][]byte) {
	rc.t.Helper()
	var b strings.Builder
	for {
		l := rc.line()
		b.WriteString(l)
		m := literalAtEnd.FindStringSubmatch(l)
		if m == nil {
			return b.String(), literals
		}
		n, _ := strconv.Atoi(m[1])
		lit := make([]byte, n)
		if _, err := ioReadFull(rc, lit); err != nil {
			rc.t.Errorf("reading a literal of %d bytes: %v", n, err)
			return b.String(), literals
		}
		literals = append(literals, lit)
	}
}

var (
	literalAtEnd = regexp.MustCompile(`\{(\d+)\}$`)
	appendUID    = regexp.MustCompile(`\[APPENDUID \d+ (\d+)\]`)
	// A FETCH that answers the test's items: FLAGS, then the header and
	// the text, each a literal.
	fullFetch  = regexp.MustCompile(`^\* [1-9]\d* FETCH \((UID \d+ )?FLAGS \([^()]*\) BODY\[HEADER\] \{\d+\} BODY\[TEXT\] \{\d+\}\)$`)
	flagsFetch = regexp.MustCompile(`^\* [1-9]\d* FETCH \((UID \d+ )?FLAGS \([^()]*\)( UID \d+)?\)$`)
	textOf     = regexp.MustCompile(`^(base|round) \d+( \d+)?\r\n$`)
)

// TestConcurrentExpungeAndFetch: ten sessions on one mailbox each APPEND,
// mark their message \Deleted, EXPUNGE (every \Deleted message, others'
// too) and FETCH 1:*. A FETCH of a message that another session expunged
// before this one was told answers the message (RFC 2180 §4.1.1), never
// NO [EXPUNGEISSUED]; nothing gets NO or BAD.
func TestConcurrentExpungeAndFetch(t *testing.T) {
	const clients, rounds, base = 10, 15, 10
	ms := realStore(t)
	ctx := context.Background()
	for i := range base {
		raw := fmt.Sprintf("From: a@bitmask.test\r\nSubject: base %d\r\n\r\nbase %d\r\n", i, i)
		if _, _, err := ms.Append(ctx, "INBOX", []byte(raw), nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	e := startServerWithStore(t, ms)

	var wg sync.WaitGroup
	var mu sync.Mutex
	fetched := 0
	for c := range clients {
		rc := e.raw()
		wg.Add(1)
		go func() {
			defer wg.Done()
			fail := func(format string, args ...any) {
				t.Errorf("client %d: "+format, append([]any{c}, args...)...)
			}
			// run sends a command and reads up to its tagged status.
			run := func(tag, cmd string) (untagged []string, lits [][][]byte, ok bool) {
				rc.send(tag + " " + cmd + "\r\n")
				for {
					l, ls := rc.response()
					if strings.HasPrefix(l, tag+" ") {
						if !strings.HasPrefix(l, tag+" OK") {
							fail("%s: %q", cmd, l)
							return untagged, lits, false
						}
						return append(untagged, l), lits, true
					}
					if strings.HasPrefix(l, "EOF") {
						fail("%s: connection ended: %s", cmd, l)
						return untagged, lits, false
					}
					untagged, lits = append(untagged, l), append(lits, ls)
				}
			}
			if _, _, ok := run("l", `LOGIN "`+testUser+`" "`+testToken+`"`); !ok {
				return
			}
			if _, _, ok := run("s", "SELECT INBOX"); !ok {
				return
			}
			for r := range rounds {
				msg := fmt.Sprintf("From: a@bitmask.test\r\nSubject: round %d %d\r\n\r\nround %d %d\r\n", c, r, c, r)
				rc.send(fmt.Sprintf("a%d APPEND INBOX {%d}\r\n", r, len(msg)))
				if l := rc.line(); !strings.HasPrefix(l, "+") {
					fail("APPEND: no continuation: %q", l)
					return
				}
				rc.send(msg + "\r\n")
				var st string
				for {
					if st, _ = rc.response(); strings.HasPrefix(st, fmt.Sprintf("a%d ", r)) || strings.HasPrefix(st, "EOF") {
						break
					}
				}
				m := appendUID.FindStringSubmatch(st)
				if !strings.HasPrefix(st, fmt.Sprintf("a%d OK", r)) || m == nil {
					fail("APPEND: %q", st)
					return
				}
				if _, _, ok := run(fmt.Sprintf("d%d", r), `UID STORE `+m[1]+` +FLAGS.SILENT (\Deleted)`); !ok {
					return
				}
				if _, _, ok := run(fmt.Sprintf("x%d", r), "EXPUNGE"); !ok {
					return
				}
				untagged, lits, ok := run(fmt.Sprintf("f%d", r), "FETCH 1:* (FLAGS BODY.PEEK[HEADER] BODY.PEEK[TEXT])")
				if !ok {
					return
				}
				n := 0
				for i, l := range untagged[:len(untagged)-1] {
					if !strings.Contains(l, " FETCH ") {
						continue
					}
					switch {
					case fullFetch.MatchString(l):
						hdr, text := lits[i][0], lits[i][1]
						if !strings.HasPrefix(string(hdr), "From: ") || !strings.HasSuffix(string(hdr), "\r\n\r\n") {
							fail("FETCH header %q", hdr)
						}
						if !textOf.Match(text) {
							fail("FETCH text %q", text)
						}
						n++
					case flagsFetch.MatchString(l):
						// a flag change of another session's, told now
					default:
						fail("malformed FETCH response %q", l)
					}
				}
				if n < base {
					fail("FETCH 1:* answered %d messages with their content, want at least the %d never expunged", n, base)
				}
				mu.Lock()
				fetched += n
				mu.Unlock()
			}
			run("o", "LOGOUT")
		}()
	}
	wg.Wait()
	t.Logf("%d FETCH responses with content", fetched)
}
