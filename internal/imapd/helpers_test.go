package imapd

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

const (
	testUser  = "alice@bitmask.test"
	testToken = "local-token-0123456789"
)

// testEnv is a server on loopback with one account on a fake store.
type testEnv struct {
	t       testing.TB
	store   *fakeStore
	srv     *Server
	addr    string // plain + STARTTLS
	tlsAddr string // implicit TLS
	roots   *x509.CertPool
}

type tbWriter struct {
	mu sync.Mutex
	t  testing.TB
	on bool
}

func (w *tbWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.on {
		w.t.Log(strings.TrimRight(string(b), "\n"))
	}
	return len(b), nil
}

func startServer(t testing.TB) *testEnv {
	t.Helper()
	return startServerWith(t, newFakeStore())
}

func startServerWith(t testing.TB, store *fakeStore) *testEnv {
	t.Helper()
	// Registered first, so it runs after the server's shutdown (cleanups
	// run last-in first-out): every session ended and released its
	// mailboxes.
	t.Cleanup(func() {
		if n := store.watcherCount(); n != 0 {
			t.Errorf("%d store watchers left after shutdown", n)
		}
	})
	e := startServerWithStore(t, store)
	e.store = store
	return e
}

// startServerWithStore serves any Mailstore for the test account.
func startServerWithStore(t testing.TB, store Mailstore) *testEnv {
	t.Helper()
	cert, roots := selfSigned(t)
	logw := &tbWriter{t: t, on: true}
	e := &testEnv{t: t, roots: roots}
	e.srv = New(AuthFunc(func(user, pass string) (Mailstore, error) {
		if user == testUser && pass == testToken {
			return store, nil
		}
		return nil, errors.New("bad credentials")
	}), Config{
		TLS:    &tls.Config{Certificates: []tls.Certificate{cert}},
		Logger: slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, implicit := range []bool{false, true} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if implicit {
			e.tlsAddr = ln.Addr().String()
		} else {
			e.addr = ln.Addr().String()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if implicit {
				err = e.srv.ServeTLS(ctx, ln)
			} else {
				err = e.srv.Serve(ctx, ln)
			}
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		}()
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		logw.mu.Lock()
		logw.on = false
		logw.mu.Unlock()
	})
	return e
}

func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, roots
}

// dial connects and logs in.
func (e *testEnv) dial(opts *imapclient.Options) *imapclient.Client {
	e.t.Helper()
	c := e.dialNoLogin(opts)
	if err := c.Login(testUser, testToken).Wait(); err != nil {
		e.t.Fatalf("login: %v", err)
	}
	return c
}

func (e *testEnv) dialNoLogin(opts *imapclient.Options) *imapclient.Client {
	e.t.Helper()
	c, err := imapclient.DialInsecure(e.addr, opts)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

func crlf(s string) []byte {
	return []byte(strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n"))
}

func appendMsg(t testing.TB, c *imapclient.Client, mbox string, raw []byte, opts *imap.AppendOptions) *imap.AppendData {
	t.Helper()
	cmd := c.Append(mbox, int64(len(raw)), opts)
	if _, err := cmd.Write(raw); err != nil {
		t.Fatalf("append write: %v", err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatalf("append close: %v", err)
	}
	data, err := cmd.Wait()
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return data
}

func mustSelect(t testing.TB, c *imapclient.Client, name string, readOnly bool) *imap.SelectData {
	t.Helper()
	data, err := c.Select(name, &imap.SelectOptions{ReadOnly: readOnly}).Wait()
	if err != nil {
		t.Fatalf("select %s: %v", name, err)
	}
	// imapclient (v2.0.0-beta.8) records the selected mailbox only after
	// Wait has returned; wait for it so that Mailbox() is usable.
	for deadline := time.Now().Add(10 * time.Second); c.Mailbox() == nil; {
		if time.Now().After(deadline) {
			t.Fatalf("select %s: client has no mailbox", name)
		}
		time.Sleep(time.Millisecond)
	}
	return data
}

func fetchAll(t testing.TB, c *imapclient.Client, set imap.NumSet, opts *imap.FetchOptions) []*imapclient.FetchMessageBuffer {
	t.Helper()
	msgs, err := c.Fetch(set, opts).Collect()
	if err != nil {
		t.Fatalf("fetch %v: %v", set, err)
	}
	return msgs
}

// imapCode returns the response code of a command error.
func imapCode(err error) imap.ResponseCode {
	var e *imap.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func imapType(err error) imap.StatusResponseType {
	var e *imap.Error
	if errors.As(err, &e) {
		return e.Type
	}
	return ""
}

// rawConn speaks IMAP by hand, for input a client library would not send.
type rawConn struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func (e *testEnv) raw() *rawConn {
	e.t.Helper()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	rc := &rawConn{t: e.t, c: c, r: bufio.NewReader(c)}
	if l := rc.line(); !strings.HasPrefix(l, "* OK") {
		e.t.Fatalf("greeting: %q", l)
	}
	return rc
}

func (rc *rawConn) line() string {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	l, err := rc.r.ReadString('\n')
	if err != nil {
		return "EOF: " + err.Error()
	}
	return strings.TrimRight(l, "\r\n")
}

func (rc *rawConn) send(s string) {
	rc.t.Helper()
	if _, err := rc.c.Write([]byte(s)); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// cmd sends a tagged command and returns the untagged lines and the
// tagged status line.
func (rc *rawConn) cmd(tag, command string) (untagged []string, status string) {
	rc.t.Helper()
	rc.send(fmt.Sprintf("%s %s\r\n", tag, command))
	return rc.until(tag)
}

func (rc *rawConn) until(tag string) (untagged []string, status string) {
	rc.t.Helper()
	for {
		l := rc.line()
		if strings.HasPrefix(l, tag+" ") || strings.HasPrefix(l, "EOF") {
			return untagged, l
		}
		untagged = append(untagged, l)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func ioReadFull(rc *rawConn, buf []byte) (int, error) {
	rc.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	return io.ReadFull(rc.r, buf)
}

// cmdCount sends a command and skips its responses cheaply (no literals
// expected), returning their number and the tagged status.
func (rc *rawConn) cmdCount(tag, command string) (n int, status string) {
	rc.send(tag + " " + command + "\r\n")
	rc.c.SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		l, err := rc.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return n, "EOF: " + err.Error()
		}
		if len(l) > len(tag) && string(l[:len(tag)+1]) == tag+" " {
			return n, strings.TrimRight(string(l), "\r\n")
		}
		n++
	}
}

// noRecent drops \Recent, which a session's first SELECT adds to FETCH
// FLAGS (RFC 3501 §2.3.2), for comparing with the store's flags.
func noRecent(flags []imap.Flag) []imap.Flag {
	var out []imap.Flag
	for _, f := range flags {
		if f != `\Recent` {
			out = append(out, f)
		}
	}
	return out
}
