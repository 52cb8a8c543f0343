package imapd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-imap/v2"

	"github.com/bitmask-go/bitmask/internal/testlog"
)

// panicStore is a fake store whose Raw panics for the messages named, as
// a bug on some message would.
type panicStore struct {
	*fakeStore
	mu  sync.Mutex
	bad map[string]bool
}

func (p *panicStore) Raw(ctx context.Context, id string) ([]byte, error) {
	p.mu.Lock()
	bad := p.bad[id]
	p.mu.Unlock()
	if bad {
		var parts [][]byte
		_ = parts[len(id)] // an index out of range
	}
	return p.fakeStore.Raw(ctx, id)
}

// startLogged serves store for the test account, logging to logs.
func startLogged(t *testing.T, store Mailstore, logs *testlog.Buffer) *testEnv {
	t.Helper()
	srv := New(AuthFunc(func(user, pass string) (Mailstore, error) {
		if user == testUser && pass == testToken {
			return store, nil
		}
		return nil, errors.New("bad credentials")
	}), Config{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	// Registered first, so it runs after the clients' cleanups; a session
	// that was not ended would keep Serve from returning.
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &testEnv{t: t, srv: srv, addr: ln.Addr().String()}
}

// checkLog requires what the log must say and that it holds none of the
// messages' content.
func checkLog(t *testing.T, log string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(log, w) {
			t.Fatalf("the log lacks %q:\n%s", w, log)
		}
	}
	for _, secret := range []string{"secret", "sender@example.org", testUser, "Subject"} {
		if strings.Contains(log, secret) {
			t.Fatalf("the log holds %q:\n%s", secret, log)
		}
	}
}

// TestPanicInACommand: a command that panics on one message answers NO
// [SERVERBUG]; the same session goes on, and so do the others. A SEARCH
// over many messages (on several goroutines) that panics on one of them
// finds the others.
func TestPanicInACommand(t *testing.T) {
	store := &panicStore{fakeStore: newFakeStore(), bad: map[string]bool{}}
	var bad uint32
	for i := range 600 {
		m := store.deliver("INBOX", simpleMsg("sender@example.org", testUser, fmt.Sprintf("m%d", i), "Mon, 1 Jan 2024 10:00:00 +0000", "secret words"))
		if i == 1 {
			store.bad[m.ID], bad = true, m.UID
		}
	}
	var logs testlog.Buffer
	e := startLogged(t, store, &logs)
	c, other := e.dial(nil), e.dial(nil)
	mustSelect(t, c, "INBOX", false)
	mustSelect(t, other, "INBOX", false)

	body := &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}
	_, err := c.Fetch(imap.UIDSetNum(imap.UID(bad)), body).Collect()
	if imapType(err) != imap.StatusResponseTypeNo || imapCode(err) != imap.ResponseCodeServerBug {
		t.Fatalf("FETCH of the message that panics: %v", err)
	}
	// The same session, then another.
	if msgs := fetchAll(t, c, imap.UIDSetNum(1, 3), body); len(msgs) != 2 {
		t.Fatalf("the same session fetched %d messages", len(msgs))
	}
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	if msgs := fetchAll(t, other, imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{UID: true, Envelope: true}); len(msgs) != 3 {
		t.Fatalf("another session fetched %d messages", len(msgs))
	}
	data, err := c.UIDSearch(&imap.SearchCriteria{Body: []string{"secret words"}}, nil).Wait()
	if err != nil {
		t.Fatalf("SEARCH: %v", err)
	}
	if uids := data.AllUIDs(); len(uids) != 599 || contains(uids, imap.UID(bad)) {
		t.Fatalf("SEARCH found %d messages (the one that panics: %v)", len(uids), contains(uids, imap.UID(bad)))
	}
	checkLog(t, logs.String(), "FETCH panicked", "imapd: SEARCH panicked on a message; not matched", "index out of range", "stack=")
}

func contains(uids []imap.UID, u imap.UID) bool {
	for _, x := range uids {
		if x == u {
			return true
		}
	}
	return false
}

// TestPanicMidFetchResponse: a panic while a FETCH response is half
// written ends that connection with BYE on a line of its own; the other
// sessions on the same mailbox go on, and the server shuts down cleanly
// (the session was closed).
func TestPanicMidFetchResponse(t *testing.T) {
	store := newFakeStore()
	for i := range 3 {
		store.deliver("INBOX", simpleMsg("sender@example.org", testUser, fmt.Sprintf("m%d", i), "Mon, 1 Jan 2024 10:00:00 +0000", "secret words"))
	}
	var once atomic.Bool
	testHookFetchResponse = func(uid uint32) {
		if uid == 2 && !once.Swap(true) {
			var m map[string]*Meta
			_ = m["x"].Envelope // a nil dereference
		}
	}
	t.Cleanup(func() { testHookFetchResponse = nil })
	var logs testlog.Buffer
	e := startLogged(t, store, &logs)
	other := e.dial(nil)
	mustSelect(t, other, "INBOX", false)

	rc := e.raw()
	if _, st := rc.cmd("l", `LOGIN "`+testUser+`" "`+testToken+`"`); !strings.HasPrefix(st, "l OK") {
		t.Fatal(st)
	}
	if _, st := rc.cmd("s", "SELECT INBOX"); !strings.HasPrefix(st, "s OK") {
		t.Fatal(st)
	}
	untagged, st := rc.cmd("f", "FETCH 1:3 (UID FLAGS)")
	// The half-written response may or may not have gone out; BYE comes
	// on a line of its own, then the connection closes.
	if !strings.HasPrefix(st, "EOF") || len(untagged) != 3 || untagged[0] != "* 1 FETCH (UID 1 FLAGS ())" ||
		(untagged[1] != "" && !strings.HasPrefix(untagged[1], "* 2 FETCH (UID 2")) ||
		!strings.HasPrefix(untagged[2], "* BYE Internal error") {
		t.Fatalf("FETCH cut short: %q then %q", untagged, st)
	}
	msgs := fetchAll(t, other, imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{UID: true, Flags: true})
	if len(msgs) != 3 {
		t.Fatalf("another session fetched %d messages", len(msgs))
	}
	checkLog(t, logs.String(), "FETCH panicked", "nil pointer dereference", "stack=")
}
