package imapd

// Tests from an attacker's review of the IMAP server on its own protocol
// layer (issue 11): each one failed before the fix it comes with.

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"
)

// lockedBuffer collects log lines from the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startLoggedServer serves a fake store for testUser, logging at debug
// level into the returned buffer.
func startLoggedServer(t *testing.T) (addr string, logs *lockedBuffer) {
	addr, logs, _ = startLoggedServerWith(t, newFakeStore())
	return addr, logs
}

func startLoggedServerWith(t *testing.T, store *fakeStore) (addr string, logs *lockedBuffer, srv *Server) {
	t.Helper()
	logs = &lockedBuffer{}
	srv = New(AuthFunc(func(user, pass string) (Mailstore, error) {
		if user == testUser && pass == testToken {
			return store, nil
		}
		return nil, errors.New("bad credentials")
	}), Config{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String(), logs, srv
}

// The log never names the account (a mail address) nor what a client
// typed as a user name (often a password, or someone's address).
func TestLoginLogsNoAddress(t *testing.T) {
	addr, logs := startLoggedServer(t)
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("mallory@elsewhere.test", "guess").Wait(); err == nil {
		t.Fatal("a wrong login was taken")
	}
	if err := c.Login(testUser, testToken).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("select: %v", err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatalf("logout: %v", err)
	}
	for _, s := range []string{"mallory", "elsewhere.test", testUser, "bitmask.test", testToken, "guess"} {
		if strings.Contains(logs.String(), s) {
			t.Errorf("the log holds %q:\n%s", s, logs)
		}
	}
}

// \Recent is a session's (RFC 3501 §2.3.2): every FLAGS this session is
// sent for a message recent to it says so, not only FETCH's: STORE's
// answer and the updates that another session's change brings.
func TestRecentInEveryFlags(t *testing.T) {
	store := newFakeStore()
	store.deliver("INBOX", reportMsg)
	e := startServerWith(t, store)
	a := e.rawLogin()
	if sel := a.ok("a1", "SELECT INBOX"); !has(sel, "* 1 RECENT") {
		t.Fatalf("SELECT: %q", sel)
	}
	if got := a.ok("a2", `STORE 1 +FLAGS (\Flagged)`); !has(got, `\Recent`) {
		t.Errorf("STORE's answer: %q, want \\Recent in FLAGS", got)
	}
	b := e.rawLogin()
	b.ok("b1", "SELECT INBOX")
	b.ok("b2", `STORE 1 +FLAGS.SILENT (\Answered)`)
	got := a.idleUntil(`\Answered`)
	if !has(got, `\Recent`) {
		t.Errorf("the update of another session's STORE: %q, want \\Recent in FLAGS", got)
	}
	// Not recent to the other session.
	if got := b.ok("b3", "FETCH 1 FLAGS"); has(got, `\Recent`) {
		t.Errorf("FETCH in the second session: %q", got)
	}
}

// indexCountingStore is a store with a full-text index that covers no
// message (every key is then read from the messages), counting the
// questions it is asked.
type indexCountingStore struct {
	*fakeStore
	calls atomic.Int32
}

func (s *indexCountingStore) Search(ctx context.Context, mbox string, uidValidity uint32, query string, all bool) ([]uint32, func(uint32) bool, bool, error) {
	s.calls.Add(1)
	return nil, func(uint32) bool { return false }, true, nil
}

// A SEARCH of thousands of BODY keys asks the index a few of them, not
// each: every answer is kept until the search ends (the mailbox's UIDs
// and hits, megabytes in a large mailbox), and each question copies the
// mailbox's list.
func TestSearchAsksTheIndexAFewKeys(t *testing.T) {
	fs := newFakeStore()
	fs.deliver("INBOX", reportMsg)
	store := &indexCountingStore{fakeStore: fs}
	e := startServerWithStore(t, store)
	rc := e.rawLogin()
	rc.ok("a1", "SELECT INBOX")
	keys := strings.Repeat("BODY numbers ", 1000)
	got := rc.ok("a2", "SEARCH "+keys+"BODY zebra")
	if !has(got, "* SEARCH 1") {
		t.Errorf("SEARCH: %q", got)
	}
	if n := store.calls.Load(); n > maxIndexedKeys {
		t.Errorf("the index was asked %d questions for one SEARCH", n)
	}
	// One that does not match, by a key past those the index answers.
	if got := rc.ok("a3", "SEARCH "+keys+"BODY absent"); !has(got, "* SEARCH") || has(got, "* SEARCH 1") {
		t.Errorf("SEARCH: %q", got)
	}
}

// A FETCH that names the same section thousands of times makes it once:
// each BINARY[2] of a 300 KB attachment was decoded (and held until the
// response) once per item.
func TestFetchMakesASectionOnce(t *testing.T) {
	att := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("0123456789abcdef", 300<<10/16)))
	var b strings.Builder
	for len(att) > 76 {
		b.WriteString(att[:76] + "\r\n")
		att = att[76:]
	}
	b.WriteString(att + "\r\n")
	msg := "From: a@example.org\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		b.String() + "--b--\r\n"
	store := newFakeStore()
	store.deliver("INBOX", []byte(msg))
	e := startServerWith(t, store)
	rc := e.rawLogin()
	rc.ok("a1", "SELECT INBOX")
	items := strings.TrimSpace(strings.Repeat("BINARY.SIZE[2] ", 2000))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got := rc.ok("a2", "FETCH 1 ("+items+")")
	runtime.ReadMemStats(&after)
	if !has(got, "BINARY.SIZE[2] 307200") {
		t.Errorf("FETCH: %.300q", got)
	}
	// 2,000 decodings are 600 MB; one is 300 KB.
	if n := after.TotalAlloc - before.TotalAlloc; n > 100<<20 {
		t.Errorf("one FETCH allocated %d MB", n>>20)
	}
}

// A mailbox view that fails (a panic while it applies the store's
// changes) ends its sessions and logs where it failed, never what the
// panic said: that may quote what was being applied.
func TestHubPanicLogsNoText(t *testing.T) {
	store := newFakeStore()
	store.deliver("INBOX", reportMsg)
	addr, logs, srv := startLoggedServerWith(t, store)
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(testUser, testToken).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("select: %v", err)
	}
	var h *hub
	srv.mu.Lock()
	for _, a := range srv.accounts {
		a.mu.Lock()
		h = a.hubs["INBOX"]
		a.mu.Unlock()
	}
	srv.mu.Unlock()
	if h == nil {
		t.Fatal("no hub for INBOX")
	}
	h.safely(func() { panic("Subject: the secret plans") })
	// The session is ended (BYE, then the connection closes).
	<-c.Closed()
	if !strings.Contains(logs.String(), "mailbox view failed") {
		t.Errorf("no log line of the failure:\n%s", logs)
	}
	if strings.Contains(logs.String(), "secret plans") {
		t.Errorf("the panic's text reached the log:\n%s", logs)
	}
}

// LIST with runs of wildcards answers as with one: "*%*" is "*", "%%"
// is "%". Matching a name costs the pattern's length times the name's, so
// the runs are collapsed first (BenchmarkListWildcardRuns: a 60,000
// wildcard pattern over 400 names took 2.5 s).
func TestListWildcardRuns(t *testing.T) {
	store := newFakeStore()
	e := startServerWith(t, store)
	rc := e.rawLogin()
	rc.ok("c1", `CREATE "a/b/c"`)
	rc.ok("c2", `CREATE "ax"`)
	for _, tc := range []struct{ pattern, want, not string }{
		{`"*%*x"`, `"ax"`, `"a/b/c"`},
		{`"%%%/%%"`, `"a/b"`, `"a/b/c"`},
		{`"a%*%c"`, `"a/b/c"`, `"ax"`},
		{`"%%%%x"`, `"ax"`, `"a/b"`},
	} {
		got := rc.ok("l", `LIST "" `+tc.pattern)
		if !has(got, tc.want) || has(got, tc.not) {
			t.Errorf("LIST %s: %q", tc.pattern, got)
		}
	}
}

func BenchmarkListWildcardRuns(b *testing.B) {
	store := newFakeStore()
	e := startServerWith(b, store)
	rc := e.rawLogin()
	for i := 0; i < 200; i++ {
		rc.ok("c", `CREATE "Folder `+itoa(i)+`/sub folder with a longer name"`)
	}
	cmd := `LIST "" ` + strings.Repeat("*", 60000) + "x"
	b.ResetTimer()
	for range b.N {
		rc.ok("l", cmd)
	}
}
