package submission_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/foxcpp/go-mockdns"

	"github.com/bitmask-go/bitmask/internal/fuzzconn"
	"github.com/bitmask-go/bitmask/internal/provider/mx"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/provider/submission"
	"github.com/bitmask-go/bitmask/internal/testenv"
)

// fuzzToken is alice's session token in FuzzSubmissionSession: fixed, so
// that the seeds log in and the fuzzer can start from a session that
// did.
const fuzzToken = "fuzz-session-token-of-alice"

const fuzzTimeout = 20 * time.Second

// FuzzSubmissionSession is a client of the submission service that sends
// the fuzzer's bytes, commands and message data alike, inside implicit
// TLS (so AUTH is offered; or, with plain, on the STARTTLS port before
// TLS), to one service started once per fuzzing process, then closes its
// side. The service must not panic (go-smtp recovers a panic and logs
// it: the log is watched), must answer only with well-formed reply
// lines, starting with its greeting and with at least one reply when a
// command line came, must close the connection once the input has
// ended, and must still serve the next client. What it queued must be
// alice's (the one user who can log in), from her address, to remote
// recipients only, with one From field that is her address; what it
// delivered locally must be encrypted to the recipient.
func FuzzSubmissionSession(f *testing.F) {
	auth := "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00alice\x00"+fuzzToken)) + "\r\n"
	const (
		ehlo = "EHLO client.example\r\n"
		from = "MAIL FROM:<alice@example.test>\r\n"
		msg  = "From: Alice <alice@example.test>\r\nTo: someone@remote.test\r\nSubject: hi\r\n\r\nHello.\r\n"
	)
	for _, s := range []struct {
		in    string
		plain bool
	}{
		{ehlo + auth + from + "RCPT TO:<someone@remote.test>\r\nDATA\r\n" + msg + ".\r\nQUIT\r\n", false},
		{ehlo + auth + from + "RCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nRCPT TO:<nobody@example.test>\r\nRCPT TO:<x@[127.0.0.1]>\r\nRCPT TO:<x@-bad-.test>\r\nDATA\r\n" + msg + ".\r\n", false},
		{ehlo + auth + from + "RCPT TO:<a@remote.test>\r\nRCPT TO:<A@REMOTE.TEST.>\r\nBDAT 40\r\nFrom: alice@example.test\r\nSubject: x\r\n\r\nBDAT 4 LAST\r\nhi\r\n", false},
		{ehlo + auth + "MAIL FROM:<bob@example.test>\r\n" + from + "RCPT TO:<s@remote.test>\r\nDATA\r\nFrom: bob@example.test\r\n\r\nx\r\n.\r\n" +
			from + "RCPT TO:<s@remote.test>\r\nDATA\r\nFrom: alice@example.test\r\nFrom: bob@example.test\r\n\r\nx\r\n.\r\n", false},
		{ehlo + "AUTH PLAIN\r\n" + base64.StdEncoding.EncodeToString([]byte("alice\x00alice@example.test\x00"+fuzzToken)) + "\r\nRSET\r\nNOOP\r\n", false},
		{ehlo + "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00bob\x00"+fuzzToken)) + "\r\nAUTH LOGIN\r\n*\r\n" + from, false},
		{ehlo + auth + from + "RCPT TO:<someone@remote.test>\r\nDATA\r\n" + msg, false}, // cut off in DATA
		{ehlo + auth + "MAIL FROM:<alice@example.test> SIZE=10\r\nRCPT TO:<s@remote.test>\r\nDATA\r\n" + msg + ".\r\n", false},
		{ehlo + "STARTTLS\r\n\x16\x03\x01\x00\x05hello", true},
		{ehlo + auth + from, true},
		{"HELO x\r\nVRFY alice\r\nHELP\r\n\r\nQUIT\r\n", false},
	} {
		f.Add([]byte(s.in), s.plain)
	}

	var logs fuzzconn.PanicLog
	p := startProvider(f, testenv.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	m := mx.New(p, mx.Config{Hostname: hostname, Resolver: &mockdns.Resolver{Zones: map[string]mockdns.Zone{}}, Logger: logs.Logger()})
	// No queue worker runs: what the sessions queue is checked and
	// removed by the fuzz function.
	sub, err := submission.New(p, p.Store, m, submission.Config{
		Hostname: hostname, DataDir: p.Dir, TLSConfig: p.TLSConfig(),
		Resolver: &mockdns.Resolver{Zones: remoteZones()},
		MaxSize:  1 << 20, MaxRecipients: 10, Logger: logs.Logger(),
	})
	if err != nil {
		f.Fatal(err)
	}
	plainLn, tlsLn := listen(f, "127.0.0.1:0"), listen(f, "127.0.0.1:0")
	done := make(chan error, 2)
	go func() { done <- sub.ServeSTARTTLS(ctx, plainLn) }()
	go func() { done <- sub.ServeTLS(ctx, tlsLn) }()
	f.Cleanup(func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				f.Errorf("submission returned %v", err)
			}
		}
	})

	w := &world{t: f, p: p, keys: map[string]*openpgp.Entity{}, tokens: map[string]string{}}
	w.addUser("alice", true)
	w.addUser("bob", false)
	sum := sha256.Sum256([]byte(fuzzToken))
	if err := p.Store.CreateSession(ctx, &storage.Session{TokenHash: sum[:], Login: "alice", Expires: time.Now().Add(24 * time.Hour)}); err != nil {
		f.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.TLSFiles().CACert)
	dial := func(t *testing.T, plain bool) net.Conn {
		t.Helper()
		if plain {
			c, err := net.Dial("tcp", plainLn.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		c, err := tls.Dial("tcp", tlsLn.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	const address = "alice@example.test"

	f.Fuzz(func(t *testing.T, in []byte, plain bool) {
		tr, err := fuzzconn.Session(dial(t, plain), in, fuzzTimeout)
		if p := logs.Take(); len(p) > 0 {
			t.Fatalf("the submission service panicked:\n%s", strings.Join(p, "\n"))
		}
		if err != nil {
			t.Fatal(err)
		}
		fuzzconn.CheckSMTP(t, in, tr)

		ctx := context.Background()
		items, err := p.Store.ListDueOutbound(ctx, time.Now().Add(1000*time.Hour), 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			msg, err := p.Store.OutboundMessage(ctx, it.ID)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Store.DeleteOutbound(ctx, it.ID); err != nil {
				t.Fatal(err)
			}
			if it.Login != "alice" || it.From != address {
				t.Fatalf("queued for %q from %q", it.Login, it.From)
			}
			if len(it.Recipients) == 0 {
				t.Fatal("queued with no recipient")
			}
			for _, r := range it.Recipients {
				_, domain, ok := strings.Cut(r.Address, "@")
				if !ok || strings.EqualFold(strings.TrimSuffix(domain, "."), testenv.Domain) || strings.HasPrefix(domain, "[") {
					t.Fatalf("queued for the recipient %q", r.Address)
				}
			}
			// An independent reading of the header: where it finds
			// the header well formed, it finds one From, hers.
			if hm, err := mail.ReadMessage(bytes.NewReader(msg)); err == nil {
				froms := hm.Header["From"]
				if len(froms) != 1 {
					t.Fatalf("queued a message with %d From fields", len(froms))
				}
				if l, err := mail.ParseAddressList(froms[0]); err == nil && (len(l) != 1 || !strings.EqualFold(l[0].Address, address)) {
					t.Fatalf("queued a message from %q", froms[0])
				}
			}
		}
		list, _, err := p.Store.ListIncoming(ctx, "alice", 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range list {
			ct, err := p.Store.Incoming(ctx, "alice", it.ID)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Store.DeleteIncoming(ctx, "alice", it.ID); err != nil {
				t.Fatal(err)
			}
			md, err := openpgp.ReadMessage(bytes.NewReader(ct), openpgp.EntityList{w.keys["alice"]}, nil, nil)
			if err != nil || !md.IsEncrypted {
				t.Fatalf("a local delivery that is not encrypted to alice (%v)", err)
			}
		}

		if err := fuzzconn.SMTPProbe(dial(t, plain), fuzzTimeout); err != nil {
			t.Fatal(err)
		}
	})
}
