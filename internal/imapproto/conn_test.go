package imapproto

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/bitmask-go/bitmask/internal/certfile"
)

// testServer is a Server on a loopback port with the in-memory Session.
type testServer struct {
	srv  *Server
	addr string
	b    *memBackend
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startServer(t testing.TB, mod func(*Options)) *testServer {
	t.Helper()
	ts := &testServer{b: newMemBackend(), logs: &syncBuffer{}}
	opts := &Options{
		NewSession: func(c *Conn) (Session, error) {
			return &memSession{b: ts.b, conn: c}, nil
		},
		Caps:         imap.CapSet{"X-TEST": {}},
		AppendLimit:  1 << 20,
		ID:           map[string]string{"name": "bitmaskd"},
		InsecureAuth: true,
		Logger:       slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(opts)
	}
	ts.srv = New(opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = ln.Addr().String()
	done := make(chan error, 1)
	go func() { done <- ts.srv.Serve(ln) }()
	t.Cleanup(func() {
		ts.srv.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

// tlsConfig makes a self-signed certificate for 127.0.0.1.
func tlsConfig(t testing.TB) (*tls.Config, *x509.CertPool) {
	dir := t.TempDir()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	p, err := certfile.Issue(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), tmpl, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.Cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{p.Cert.Raw}, PrivateKey: p.Key, Leaf: p.Cert}}}, roots
}

// rawClient speaks IMAP by hand.
type rawClient struct {
	t        testing.TB
	c        net.Conn
	r        *bufio.Reader
	greeting string
}

func (ts *testServer) dial(t testing.TB) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &rawClient{t: t, c: c, r: bufio.NewReader(c)}
	// A test that goes wrong fails instead of hanging.
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	rc.greeting = rc.line()
	return rc
}

func (rc *rawClient) send(s string) {
	rc.t.Helper()
	if _, err := rc.c.Write([]byte(s)); err != nil {
		rc.t.Fatalf("writing %q: %v", s, err)
	}
}

func (rc *rawClient) line() string {
	rc.t.Helper()
	l, err := rc.r.ReadString('\n')
	if err != nil {
		rc.t.Fatalf("reading a line (after %q): %v", l, err)
	}
	return strings.TrimRight(l, "\r\n")
}

// until reads lines up to the one tagged tag and returns them all.
func (rc *rawClient) until(tag string) string {
	rc.t.Helper()
	var b strings.Builder
	for {
		l := rc.line()
		b.WriteString(l)
		b.WriteString("\r\n")
		if strings.HasPrefix(l, tag+" ") {
			return b.String()
		}
	}
}

// cmd sends "tag command" and returns the response lines.
func (rc *rawClient) cmd(tag, command string) string {
	rc.t.Helper()
	rc.send(tag + " " + command + "\r\n")
	return rc.until(tag)
}

// expect checks that the tagged line of resp starts with want.
func expect(t testing.TB, resp, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(resp, "\r\n"), "\r\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, want) {
		t.Fatalf("got %q, want a line starting %q", resp, want)
	}
}

func (rc *rawClient) login() {
	rc.t.Helper()
	expect(rc.t, rc.cmd("L", "LOGIN alice pw"), "L OK")
}

// closed reports whether the server closed the connection (reading gives
// EOF or a reset), after reading what was left.
func (rc *rawClient) closed() (rest string, ok bool) {
	var b strings.Builder
	for {
		l, err := rc.r.ReadString('\n')
		b.WriteString(l)
		if err != nil {
			return b.String(), !isTimeout(err)
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func capsOf(line string) []string {
	if i := strings.Index(line, "CAPABILITY "); i >= 0 {
		s := line[i+len("CAPABILITY "):]
		if j := strings.IndexByte(s, ']'); j >= 0 {
			s = s[:j]
		}
		return strings.Fields(s)
	}
	return nil
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestGreetingAndCapabilities(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.dial(t)
	if !strings.HasPrefix(rc.greeting, "* OK [CAPABILITY IMAP4rev1 IMAP4rev2 ") || !strings.HasSuffix(rc.greeting, "] ready") {
		t.Fatalf("greeting %q", rc.greeting)
	}
	pre := capsOf(rc.greeting)
	for _, c := range []string{"LITERAL+", "ID", "ENABLE", "IDLE", "SASL-IR", "AUTH=PLAIN"} {
		if !has(pre, c) {
			t.Errorf("greeting lacks %s: %v", c, pre)
		}
	}
	for _, c := range []string{"MOVE", "CONDSTORE", "STARTTLS", "LOGINDISABLED", "X-TEST"} {
		if has(pre, c) {
			t.Errorf("greeting has %s: %v", c, pre)
		}
	}
	resp := rc.cmd("a1", "CAPABILITY")
	expect(t, resp, "a1 OK")
	if got := capsOf(strings.SplitN(resp, "\r\n", 2)[0]); strings.Join(got, " ") != strings.Join(pre, " ") {
		t.Errorf("CAPABILITY %v, greeting %v", got, pre)
	}

	resp = rc.cmd("a2", "LOGIN alice pw")
	expect(t, resp, "a2 OK [CAPABILITY ")
	post := capsOf(resp)
	for _, c := range []string{"IMAP4rev2", "LITERAL+", "MULTIAPPEND", "CONDSTORE", "QRESYNC", "UTF8=ACCEPT", "UNSELECT",
		"UIDPLUS", "ESEARCH", "SEARCHRES", "NAMESPACE", "MOVE", "CHILDREN", "LIST-EXTENDED", "LIST-STATUS",
		"SPECIAL-USE", "BINARY", "STATUS=SIZE", "UNAUTHENTICATE", "APPENDLIMIT=1048576", "X-TEST"} {
		if !has(post, c) {
			t.Errorf("after LOGIN lacks %s: %v", c, post)
		}
	}
	if has(post, "AUTH=PLAIN") || has(post, "LOGINDISABLED") {
		t.Errorf("after LOGIN: %v", post)
	}
	resp = rc.cmd("a3", "CAPABILITY")
	if got := capsOf(strings.SplitN(resp, "\r\n", 2)[0]); strings.Join(got, " ") != strings.Join(post, " ") {
		t.Errorf("CAPABILITY %v, LOGIN's %v", got, post)
	}
	expect(t, rc.cmd("a4", "LOGOUT"), "a4 OK")
}

func TestStates(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.dial(t)
	expect(t, rc.cmd("a1", "SELECT INBOX"), "a1 BAD")
	expect(t, rc.cmd("a2", "FETCH 1 FLAGS"), "a2 BAD")
	expect(t, rc.cmd("a3", "LOGIN alice wrong"), "a3 NO [AUTHENTICATIONFAILED]")
	rc.login()
	expect(t, rc.cmd("a4", "LOGIN alice pw"), "a4 BAD")
	expect(t, rc.cmd("a5", "FETCH 1 FLAGS"), "a5 BAD")
	expect(t, rc.cmd("a6", "SELECT nosuch"), "a6 NO [TRYCREATE]")
	resp := rc.cmd("a7", "SELECT INBOX")
	expect(t, resp, "a7 OK [READ-WRITE]")
	if !hasLine(resp, "* 0 EXISTS") || !hasLine(resp, "* OK [UIDVALIDITY 7]") {
		t.Errorf("SELECT: %q", resp)
	}
	expect(t, rc.cmd("a8", "FETCH 1:* FLAGS"), "a8 OK")
	expect(t, rc.cmd("a9", "EXAMINE INBOX"), "a9 OK [READ-ONLY]")
	// A failed SELECT leaves nothing selected.
	expect(t, rc.cmd("b1", "SELECT nosuch"), "b1 NO")
	expect(t, rc.cmd("b2", "FETCH 1 FLAGS"), "b2 BAD")
	expect(t, rc.cmd("b3", "SELECT INBOX"), "b3 OK")
	expect(t, rc.cmd("b4", "UNSELECT"), "b4 OK")
	expect(t, rc.cmd("b5", "CLOSE"), "b5 BAD")
	expect(t, rc.cmd("b6", "UNAUTHENTICATE"), "b6 OK")
	expect(t, rc.cmd("b7", "SELECT INBOX"), "b7 BAD")
	rc.login()
	resp = rc.cmd("b8", "LOGOUT")
	if !strings.HasPrefix(resp, "* BYE ") {
		t.Errorf("LOGOUT: %q", resp)
	}
	expect(t, resp, "b8 OK")
	if rest, ok := rc.closed(); !ok || rest != "" {
		t.Errorf("after LOGOUT: %q, closed %v", rest, ok)
	}
}

func TestLoginDisabledWithoutTLS(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.InsecureAuth = false })
	rc := ts.dial(t)
	pre := capsOf(rc.greeting)
	if !has(pre, "LOGINDISABLED") || has(pre, "AUTH=PLAIN") {
		t.Errorf("greeting %v", pre)
	}
	expect(t, rc.cmd("a1", "LOGIN alice pw"), "a1 NO [PRIVACYREQUIRED]")
	expect(t, rc.cmd("a2", "AUTHENTICATE PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00alice\x00pw"))), "a2 NO [PRIVACYREQUIRED]")
}

func TestStartTLS(t *testing.T) {
	cfg, roots := tlsConfig(t)
	ts := startServer(t, func(o *Options) { o.InsecureAuth = false; o.TLSConfig = cfg })
	rc := ts.dial(t)
	pre := capsOf(rc.greeting)
	if !has(pre, "STARTTLS") || !has(pre, "LOGINDISABLED") {
		t.Fatalf("greeting %v", pre)
	}
	// A command sent in plain text after STARTTLS, before the handshake,
	// must not be run: it is dropped.
	rc.send("t1 STARTTLS\r\nt2 LOGIN alice pw\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "t1 OK") {
		t.Fatalf("STARTTLS: %q", l)
	}
	if n := rc.r.Buffered(); n != 0 {
		t.Fatalf("%d bytes after STARTTLS's OK", n)
	}
	tc := tls.Client(rc.c, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	rc.c, rc.r = tc, bufio.NewReader(tc)
	resp := rc.cmd("t3", "CAPABILITY")
	caps := capsOf(resp)
	if has(caps, "STARTTLS") || has(caps, "LOGINDISABLED") || !has(caps, "AUTH=PLAIN") {
		t.Errorf("CAPABILITY over TLS: %v", caps)
	}
	if strings.Contains(resp, "t2 ") {
		t.Errorf("the plain-text command was run: %q", resp)
	}
	expect(t, rc.cmd("t4", "STARTTLS"), "t4 BAD")
	rc.login()
	expect(t, rc.cmd("t5", "NOOP"), "t5 OK")
}

func TestAuthenticatePlain(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.dial(t)
	creds := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00pw"))
	// SASL-IR.
	expect(t, rc.cmd("a1", "AUTHENTICATE PLAIN "+creds), "a1 OK")
	expect(t, rc.cmd("a2", "UNAUTHENTICATE"), "a2 OK")
	// With a continuation.
	rc.send("a3 AUTHENTICATE PLAIN\r\n")
	if l := rc.line(); l != "+ " {
		t.Fatalf("continuation %q", l)
	}
	rc.send(creds + "\r\n")
	expect(t, rc.until("a3"), "a3 OK")
	expect(t, rc.cmd("a4", "UNAUTHENTICATE"), "a4 OK")
	// Cancelled.
	rc.send("a5 AUTHENTICATE PLAIN\r\n")
	if l := rc.line(); l != "+ " {
		t.Fatalf("continuation %q", l)
	}
	rc.send("*\r\n")
	expect(t, rc.until("a5"), "a5 BAD")
	// Wrong password, another user's identity, unknown mechanism.
	expect(t, rc.cmd("a6", "AUTHENTICATE PLAIN "+base64.StdEncoding.EncodeToString([]byte("\x00alice\x00nope"))), "a6 NO")
	expect(t, rc.cmd("a7", "AUTHENTICATE PLAIN "+base64.StdEncoding.EncodeToString([]byte("bob\x00alice\x00pw"))), "a7 NO [AUTHORIZATIONFAILED]")
	expect(t, rc.cmd("a8", "AUTHENTICATE CRAM-MD5"), "a8 NO")
	if strings.Contains(ts.logs.String(), "nope") {
		t.Errorf("a password reached the log:\n%s", ts.logs)
	}
}

func TestAppendOverLimit(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.AppendLimit = 1000 })
	rc := ts.dial(t)
	rc.login()
	big := strings.Repeat("x", 1998) + "\r\n"

	// LITERAL+: the client sends it all at once; the server reads it,
	// drops it and says TOOBIG, and the connection goes on.
	rc.send("a1 APPEND INBOX {2000+}\r\n" + big + "\r\na2 NOOP\r\n")
	expect(t, rc.until("a1"), "a1 NO [TOOBIG]")
	expect(t, rc.until("a2"), "a2 OK")

	// Synchronizing: refused before the client sends it.
	rc.send("a3 APPEND INBOX {2000}\r\n")
	expect(t, rc.until("a3"), "a3 NO [TOOBIG]")
	expect(t, rc.cmd("a4", "NOOP"), "a4 OK")

	// Within the limit: appended.
	rc.send("a5 APPEND INBOX (\\Seen) {5}\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("continuation %q", l)
	}
	rc.send("hello\r\n")
	expect(t, rc.until("a5"), "a5 OK [APPENDUID 7 1]")
	// MULTIAPPEND, LITERAL+.
	expect(t, rc.cmd("a6", "APPEND INBOX {3+}\r\none {3+}\r\ntwo"), "a6 OK [APPENDUID 7 2:3]")
	if ts.b.appended != 3 {
		t.Errorf("%d messages appended, want 3", ts.b.appended)
	}
}

func TestLongID(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.dial(t)
	var b strings.Builder
	b.WriteString("a1 ID (")
	for i := 0; b.Len() < 100<<10; i++ {
		fmt.Fprintf(&b, "\"key%d\" \"%s\" ", i, strings.Repeat("v", 60))
	}
	b.WriteString("\"end\" NIL)\r\n")
	rc.send(b.String())
	expect(t, rc.until("a1"), "a1 BAD")
	expect(t, rc.cmd("a2", "NOOP"), "a2 OK")
	resp := rc.cmd("a3", `ID ("name" "test client" "os" "secretos")`)
	expect(t, resp, "a3 OK")
	if !hasLine(resp, `* ID ("name" "bitmaskd")`) {
		t.Errorf("ID: %q", resp)
	}
	if strings.Contains(ts.logs.String(), "secretos") || strings.Contains(ts.logs.String(), "test client") {
		t.Errorf("the client's ID reached the log:\n%s", ts.logs)
	}
	expect(t, rc.cmd("a4", "ID NIL"), "a4 OK")
}

func TestPreAuthGarbageCloses(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.dial(t)
	rc.send("GET / HTTP/1.1\r\nHost: example\r\nUser-Agent: x\r\n\r\n")
	rest, ok := rc.closed()
	if !ok || !strings.Contains(rest, "* BYE") {
		t.Errorf("after an HTTP request: %q, closed %v", rest, ok)
	}
}

func TestPipelined(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.dial(t)
	rc.send("p1 NOOP\r\np2 LOGIN alice pw\r\np3 SELECT INBOX\r\np4 APPEND INBOX {2+}\r\nhi\r\np5 FETCH 1 (UID FLAGS)\r\np6 BOGUS\r\np7 NOOP\r\n")
	for _, want := range []string{"p1 OK", "p2 OK", "p3 OK", "p4 OK", "p5 OK", "p6 BAD", "p7 OK"} {
		resp := rc.until(strings.Fields(want)[0])
		expect(t, resp, want)
		if want == "p5 OK" && !strings.Contains(resp, "* 1 FETCH (UID 1 FLAGS ())") {
			t.Errorf("FETCH: %q", resp)
		}
		if want == "p4 OK" && !hasLine(resp, "* 1 EXISTS") {
			t.Errorf("APPEND into the selected mailbox: no EXISTS: %q", resp)
		}
	}
}

func TestIdle(t *testing.T) {
	ts := startServer(t, nil)
	a := ts.dial(t)
	a.login()
	expect(t, a.cmd("a1", "SELECT INBOX"), "a1 OK")
	a.send("a2 IDLE\r\n")
	if l := a.line(); l != "+ idling" {
		t.Fatalf("IDLE: %q", l)
	}
	b := ts.dial(t)
	b.login()
	expect(t, b.cmd("b1", "APPEND INBOX {3+}\r\none"), "b1 OK")
	if l := a.line(); l != "* 1 EXISTS" {
		t.Fatalf("while idling: %q", l)
	}
	expect(t, b.cmd("b2", "SELECT INBOX"), "b2 OK")
	expect(t, b.cmd("b3", `STORE 1 +FLAGS (\Deleted)`), "b3 OK")
	if l := a.line(); l != `* 1 FETCH (UID 1 FLAGS (\Deleted))` {
		t.Fatalf("while idling: %q", l)
	}
	expect(t, b.cmd("b4", "EXPUNGE"), "b4 OK")
	if l := a.line(); l != "* 1 EXPUNGE" {
		t.Fatalf("while idling: %q", l)
	}
	a.send("DONE\r\n")
	expect(t, a.until("a2"), "a2 OK")
	// Anything but DONE ends IDLE with BAD.
	a.send("a3 IDLE\r\n")
	a.line()
	a.send("NOPE\r\n")
	expect(t, a.until("a3"), "a3 BAD")
	expect(t, a.cmd("a4", "NOOP"), "a4 OK")
}

func TestQResync(t *testing.T) {
	ts := startServer(t, nil)
	a := ts.dial(t)
	a.login()
	expect(t, a.cmd("a0", "APPEND INBOX {1+}\r\n1 {1+}\r\n2 {1+}\r\n3"), "a0 OK")
	expect(t, a.cmd("a1", "SELECT INBOX (QRESYNC (7 1 1:3))"), "a1 BAD")
	resp := a.cmd("a2", "ENABLE QRESYNC")
	expect(t, resp, "a2 OK")
	if !hasLine(resp, "* ENABLED QRESYNC") {
		t.Errorf("ENABLE: %q", resp)
	}
	// Already on: nothing newly enabled.
	if resp := a.cmd("a3", "ENABLE QRESYNC CONDSTORE"); !strings.HasPrefix(resp, "* ENABLED\r\n") {
		t.Errorf("ENABLE again: %q", resp)
	}
	resp = a.cmd("a4", "SELECT INBOX (QRESYNC (7 1 1:5))")
	expect(t, resp, "a4 OK [READ-WRITE]")
	if !hasLine(resp, "* VANISHED (EARLIER) 4:5") || !hasLine(resp, "* OK [HIGHESTMODSEQ ") {
		t.Errorf("SELECT QRESYNC: %q", resp)
	}
	// Another session expunges: this one is told VANISHED, not EXPUNGE.
	b := ts.dial(t)
	b.login()
	expect(t, b.cmd("b1", "SELECT INBOX"), "b1 OK")
	expect(t, b.cmd("b2", `STORE 1:2 +FLAGS.SILENT (\Deleted)`), "b2 OK")
	expect(t, b.cmd("b3", "EXPUNGE"), "b3 OK")
	resp = a.cmd("a5", "NOOP")
	if !hasLine(resp, "* VANISHED 1:2") || strings.Contains(resp, "EXPUNGE") {
		t.Errorf("NOOP after an expunge: %q", resp)
	}
	if !strings.Contains(resp, "MODSEQ (") {
		t.Errorf("flag changes without MODSEQ under QRESYNC: %q", resp)
	}
	// A second SELECT closes the first with OK [CLOSED].
	resp = a.cmd("a6", "SELECT INBOX")
	if !strings.HasPrefix(resp, "* OK [CLOSED]") {
		t.Errorf("second SELECT: %q", resp)
	}
	expect(t, resp, "a6 OK")
	// VANISHED on FETCH needs UID FETCH and CHANGEDSINCE.
	expect(t, a.cmd("a7", "FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)"), "a7 BAD")
}

func TestCondStoreByUse(t *testing.T) {
	ts := startServer(t, nil)
	a := ts.dial(t)
	a.login()
	expect(t, a.cmd("a0", "APPEND INBOX {1+}\r\n1"), "a0 OK")
	expect(t, a.cmd("a1", "SELECT INBOX"), "a1 OK")
	resp := a.cmd("a2", "STORE 1 +FLAGS (\\Seen)")
	if strings.Contains(resp, "MODSEQ") {
		t.Errorf("MODSEQ before CONDSTORE: %q", resp)
	}
	expect(t, a.cmd("a3", "FETCH 1 (FLAGS MODSEQ)"), "a3 OK")
	resp = a.cmd("a4", "STORE 1 +FLAGS (\\Flagged)")
	if !strings.Contains(resp, "MODSEQ (") {
		t.Errorf("no MODSEQ after FETCH MODSEQ enabled CONDSTORE: %q", resp)
	}
	expect(t, a.cmd("a5", "STORE 1 (UNCHANGEDSINCE 1) +FLAGS (\\Deleted)"), "a5 OK [MODIFIED 1]")
}

func TestPanickingSession(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.dial(t)
	rc.login()
	ts.b.setPanic("CREATE")
	expect(t, rc.cmd("a1", "CREATE boom"), "a1 NO [SERVERBUG]")
	ts.b.setPanic("")
	expect(t, rc.cmd("a2", "CREATE fine"), "a2 OK")
	logs := ts.logs.String()
	if !strings.Contains(logs, "CREATE panicked") || !strings.Contains(logs, "stack=") {
		t.Errorf("the panic was not logged:\n%s", logs)
	}
	if strings.Contains(logs, "secret text") {
		t.Errorf("the panic's text reached the log:\n%s", logs)
	}

	// A panic in the middle of a FETCH response: BYE, connection closed;
	// the server goes on.
	expect(t, rc.cmd("a3", "APPEND INBOX {1+}\r\n1"), "a3 OK")
	expect(t, rc.cmd("a4", "SELECT INBOX"), "a4 OK")
	ts.b.setPanic("FETCH-MID")
	rc.send("a5 FETCH 1 FLAGS\r\n")
	rest, ok := rc.closed()
	if !ok || !strings.Contains(rest, "\r\n* BYE ") {
		t.Errorf("after a panic mid-response: %q, closed %v", rest, ok)
	}
	ts.b.setPanic("")
	rc2 := ts.dial(t)
	rc2.login()
	expect(t, rc2.cmd("b1", "NOOP"), "b1 OK")
}

func TestBye(t *testing.T) {
	conns := make(chan *Conn, 1)
	ts := startServer(t, func(o *Options) {
		inner := o.NewSession
		o.NewSession = func(c *Conn) (Session, error) {
			conns <- c
			return inner(c)
		}
	})
	rc := ts.dial(t)
	c := <-conns
	if err := c.Bye("Going away"); err != nil {
		t.Fatal(err)
	}
	rest, ok := rc.closed()
	if !ok || rest != "* BYE Going away\r\n" {
		t.Errorf("after Bye: %q, closed %v", rest, ok)
	}
}

func TestRefusedSession(t *testing.T) {
	ts := startServer(t, func(o *Options) {
		o.NewSession = func(c *Conn) (Session, error) {
			return nil, &imap.Error{Type: imap.StatusResponseTypeBye, Text: "Too many connections"}
		}
	})
	rc := ts.dial(t)
	if rc.greeting != "* BYE Too many connections" {
		t.Errorf("greeting %q", rc.greeting)
	}
}

// TestClient runs the common commands through go-imap's client.
func TestClient(t *testing.T) {
	ts := startServer(t, nil)
	c, err := imapclient.DialInsecure(ts.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice", "pw").Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Create("Archive", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		msg := fmt.Sprintf("Subject: %d\r\n\r\nbody %d\r\n", i, i)
		cmd := c.Append("INBOX", int64(len(msg)), nil)
		if _, err := cmd.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Close(); err != nil {
			t.Fatal(err)
		}
		data, err := cmd.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if data.UID != imap.UID(i+1) || data.UIDValidity != 7 {
			t.Errorf("APPEND: %+v", data)
		}
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 3 || sel.UIDValidity != 7 {
		t.Errorf("SELECT: %+v", sel)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 || msgs[2].UID != 3 || !strings.HasPrefix(string(msgs[2].FindBodySection(&imap.FetchItemBodySection{Peek: true})), "Subject: 2") {
		t.Errorf("FETCH: %+v", msgs)
	}
	if _, err := c.Store(imap.SeqSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}, Silent: true}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	sr, err := c.UIDSearch(&imap.SearchCriteria{Flag: []imap.Flag{imap.FlagFlagged}}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if got := sr.AllUIDs(); len(got) != 1 || got[0] != 2 {
		t.Errorf("UID SEARCH FLAGGED: %v", got)
	}
	cd, err := c.Copy(imap.SeqSetNum(1), "Archive").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if cd.UIDValidity != 9 {
		t.Errorf("COPY: %+v", cd)
	}
	md, err := c.Move(imap.UIDSetNum(3), "Archive").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if md.UIDValidity != 9 || md.DestUIDs.String() != "2" {
		t.Errorf("MOVE: %+v", md)
	}
	st, err := c.Status("Archive", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if st.NumMessages == nil || *st.NumMessages != 2 {
		t.Errorf("STATUS: %+v", st)
	}
	boxes, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(boxes) != 2 || boxes[0].Mailbox != "Archive" || boxes[1].Mailbox != "INBOX" {
		t.Errorf("LIST: %+v", boxes)
	}
	ns, err := c.Namespace().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(ns.Personal) != 1 || ns.Personal[0].Delim != '/' {
		t.Errorf("NAMESPACE: %+v", ns)
	}
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestPanicInIdleAndPoll(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.dial(t)
	rc.login()
	expect(t, rc.cmd("a1", "SELECT INBOX"), "a1 OK")
	ts.b.setPanic("IDLE")
	rc.send("a2 IDLE\r\n")
	if l := rc.line(); l != "+ idling" {
		t.Fatalf("IDLE: %q", l)
	}
	rc.send("DONE\r\n")
	expect(t, rc.until("a2"), "a2 NO [SERVERBUG]")
	ts.b.setPanic("POLL")
	expect(t, rc.cmd("a3", "NOOP"), "a3 OK")
	ts.b.setPanic("")
	expect(t, rc.cmd("a4", "NOOP"), "a4 OK")
	logs := ts.logs.String()
	if !strings.Contains(logs, "IDLE panicked") || !strings.Contains(logs, "poll panicked") || strings.Contains(logs, "secret text") {
		t.Errorf("log:\n%s", logs)
	}
}

// TestByeWaitsForResponse: Bye from another goroutine while a FETCH
// response is being written comes after that response, whole.
func TestByeWaitsForResponse(t *testing.T) {
	conns := make(chan *Conn, 1)
	ts := startServer(t, func(o *Options) {
		inner := o.NewSession
		o.NewSession = func(c *Conn) (Session, error) {
			conns <- c
			return inner(c)
		}
	})
	rc := ts.dial(t)
	c := <-conns
	rc.login()
	expect(t, rc.cmd("a1", "APPEND INBOX {5+}\r\nhello"), "a1 OK")
	expect(t, rc.cmd("a2", "SELECT INBOX"), "a2 OK")
	byeDone := make(chan error, 1)
	ts.b.setMidFetch(func() {
		go func() { byeDone <- c.Bye("Shutting down") }()
		// Bye cannot write before this response ends: the writer is
		// held. Give it every chance to (the test passes either way if
		// it waits; it fails if it cuts in).
		for range 100 {
			runtime.Gosched()
		}
	})
	rc.send("a3 FETCH 1 (UID BODY.PEEK[])\r\n")
	rest, ok := rc.closed()
	if !ok {
		t.Fatal("not closed")
	}
	if err := <-byeDone; err != nil {
		t.Errorf("Bye: %v", err)
	}
	// The BYE comes after the whole FETCH response (and maybe after
	// the tagged OK, if that took the writer first).
	want1 := "* 1 FETCH (UID 1 BODY[] {5}\r\nhello)\r\n* BYE Shutting down\r\n"
	want2 := "* 1 FETCH (UID 1 BODY[] {5}\r\nhello)\r\na3 OK FETCH completed\r\n* BYE Shutting down\r\n"
	if rest != want1 && rest != want2 {
		t.Errorf("got %q, want %q or %q", rest, want1, want2)
	}
	<-ts.b.closed
}

func TestUnchangedSinceZero(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.dial(t)
	rc.login()
	expect(t, rc.cmd("a1", "APPEND INBOX {1+}\r\n1"), "a1 OK")
	expect(t, rc.cmd("a2", "SELECT INBOX"), "a2 OK")
	expect(t, rc.cmd("a3", "STORE 1 (UNCHANGEDSINCE 0) +FLAGS (\\Seen)"), "a3 OK [MODIFIED 1]")
	resp := rc.cmd("a4", "STORE 1 +FLAGS (\\Flagged)")
	if !strings.Contains(resp, "FLAGS (\\Flagged)") || !strings.Contains(resp, "MODSEQ") {
		t.Errorf("after a failed conditional STORE (CONDSTORE now on): %q", resp)
	}
}

func TestUTF8Accept(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.dial(t)
	rc.login()
	expect(t, rc.cmd("a1", "CREATE &AMk-t&AOk-"), "a1 OK")
	if resp := rc.cmd("a2", `LIST "" "*"`); !strings.Contains(resp, "&AMk-t&AOk-") {
		t.Errorf("LIST before UTF8=ACCEPT: %q", resp)
	}
	expect(t, rc.cmd("a3", "ENABLE UTF8=ACCEPT"), "a3 OK")
	if resp := rc.cmd("a4", `LIST "" "*"`); !strings.Contains(resp, `"Été"`) && !strings.Contains(resp, " Été") {
		t.Errorf("LIST with UTF8=ACCEPT: %q", resp)
	}
	expect(t, rc.cmd("a5", `SELECT "Été"`), "a5 OK")
}

func TestSessionClosedAndServerClose(t *testing.T) {
	ts := startServer(t, nil)
	rc := ts.dial(t)
	rc.login()
	rc.c.Close()
	<-ts.b.closed // the session is closed when its client goes

	rc = ts.dial(t)
	if err := ts.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := rc.closed(); !ok {
		t.Error("Server.Close left a connection open")
	}
	<-ts.b.closed
}

// TestClientStartTLSIdle: go-imap's client through STARTTLS, AUTHENTICATE
// PLAIN (SASL-IR) and IDLE.
func TestClientStartTLSIdle(t *testing.T) {
	cfg, roots := tlsConfig(t)
	ts := startServer(t, func(o *Options) { o.InsecureAuth = false; o.TLSConfig = cfg })
	updates := make(chan uint32, 10)
	c, err := imapclient.DialStartTLS(ts.addr, &imapclient.Options{
		TLSConfig: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(data *imapclient.UnilateralDataMailbox) {
				if data.NumMessages != nil {
					updates <- *data.NumMessages
				}
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Authenticate(sasl.NewPlainClient("", "alice", "pw")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	// Another session appends.
	other := &memSession{b: ts.b}
	if _, err := other.Append("INBOX", []AppendMessage{{Literal: []byte("one")}}); err != nil {
		t.Fatal(err)
	}
	if n := <-updates; n != 1 {
		t.Errorf("EXISTS %d while idling", n)
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestPanicOutsideSessionMethods: a panic that call does not cover (here
// in NewSession) closes that connection only.
func TestPanicOutsideSessionMethods(t *testing.T) {
	var n sync.Mutex
	first := true
	ts := startServer(t, func(o *Options) {
		inner := o.NewSession
		o.NewSession = func(c *Conn) (Session, error) {
			n.Lock()
			f := first
			first = false
			n.Unlock()
			if f {
				panic("secret text in a panic")
			}
			return inner(c)
		}
	})
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc := &rawClient{t: t, c: c, r: bufio.NewReader(c)}
	if rest, ok := rc.closed(); !ok || rest != "" {
		t.Errorf("first connection: %q, closed %v", rest, ok)
	}
	rc = ts.dial(t)
	rc.login()
	expect(t, rc.cmd("a1", "NOOP"), "a1 OK")
	logs := ts.logs.String()
	if !strings.Contains(logs, "connection failed") || strings.Contains(logs, "secret text") {
		t.Errorf("log:\n%s", logs)
	}
}
