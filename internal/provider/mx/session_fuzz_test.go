package mx_test

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/fuzzconn"
	"github.com/bitmask-go/bitmask/internal/provider/mx"
)

// fuzzTimeout bounds one fuzzed session: the MX must have ended it this
// long after the client's last byte.
const fuzzTimeout = 20 * time.Second

// FuzzMXSession is an SMTP (or, with lmtp, LMTP) client that sends the
// fuzzer's bytes, commands and message data alike, to one MX started
// once per fuzzing process, then closes its side. The MX must not panic
// (go-smtp recovers a panic and logs it: the log is watched), must
// answer only with well-formed reply lines, starting with its greeting
// and with at least one reply when a command line came, must close the
// connection once the input has ended, and must still serve the next
// client. Whatever it stored must be an item encrypted to the recipient
// that starts with the MX's own Authentication-Results and Received.
func FuzzMXSession(f *testing.F) {
	const (
		ehlo = "EHLO client.example\r\n"
		from = "MAIL FROM:<x@pass.example>\r\n"
		rcpt = "RCPT TO:<alice@example.test>\r\n"
		msg  = "From: x@pass.example\r\nTo: alice@example.test\r\nSubject: hi\r\n\r\nHello.\r\n"
	)
	for _, s := range []struct {
		in   string
		lmtp bool
	}{
		{ehlo + from + rcpt + "DATA\r\n" + msg + ".\r\nQUIT\r\n", false},
		{"HELO client.example\r\n" + from + rcpt + "RCPT TO:<bob@example.test>\r\nRCPT TO:<nobody@example.test>\r\nRCPT TO:<x@elsewhere.example>\r\nDATA\r\n" + msg + ".\r\n", false},
		{ehlo + from + rcpt + "BDAT 10\r\nSubject: xBDAT 5 LAST\r\n\r\nhi\r\n", false},
		{ehlo + "MAIL FROM:<> SIZE=100 BODY=8BITMIME\r\n" + rcpt + "RSET\r\n" + from + rcpt + "DATA\r\n..dots\r\n\r\n.\r\nNOOP\r\nVRFY alice\r\nHELP\r\n", false},
		{ehlo + "MAIL FROM:<x@pass.example> SIZE=99999999999999999999\r\nMAIL FROM:<x@pass.example> BODY=BINARYMIME\r\nRCPT TO:<alice@example.test> NOTIFY=NEVER ORCPT=rfc822;alice@example.test\r\n", false},
		{ehlo + "STARTTLS\r\n\x16\x03\x01\x00\x05hello", false},
		{ehlo + "AUTH PLAIN AGFsaWNlAHg=\r\n" + from + "DATA\r\n", false},
		{ehlo + from + rcpt + "DATA\r\n" + msg, false}, // cut off in DATA
		{"LHLO client.example\r\n" + from + rcpt + "RCPT TO:<bob@example.test>\r\nRCPT TO:<ALICE@example.test>\r\nDATA\r\n" + msg + ".\r\n", true},
		{"LHLO client.example\r\n" + from + rcpt + "BDAT 8 LAST\r\nSubject:", true},
		{"EHLO client.example\r\n" + from + rcpt + "DATA\r\n", true}, // EHLO is not LMTP
		{"\r\n\r\nQUIT\r\n", false},
		{strings.Repeat("NOOP\r\n", 50), false},
	} {
		f.Add([]byte(s.in), s.lmtp)
	}

	var logs fuzzconn.PanicLog
	sock := filepath.Join(f.TempDir(), "lmtp.sock")
	w := newWorld(f, worldOptions{
		cfg:  mx.Config{MaxSize: 1 << 20, MaxRecipients: 10, Logger: logs.Logger()},
		lmtp: sock,
		tls:  true,
	})
	w.addUser("alice", true)
	w.addUser("bob", false)
	key := w.keys["alice"]
	store := w.p.Store

	f.Fuzz(func(t *testing.T, in []byte, lmtp bool) {
		network, addr := "tcp", w.addr
		if lmtp {
			network, addr = "unix", sock
		}
		c, err := net.Dial(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := fuzzconn.Session(c, in, fuzzTimeout)
		if p := logs.Take(); len(p) > 0 {
			t.Fatalf("the MX panicked:\n%s", strings.Join(p, "\n"))
		}
		if err != nil {
			t.Fatal(err)
		}
		fuzzconn.CheckSMTP(t, in, tr)

		// What was stored is for alice, encrypted, with our fields.
		ctx := context.Background()
		list, _, err := store.ListIncoming(ctx, "alice", 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range list {
			ct, err := store.Incoming(ctx, "alice", it.ID)
			if err != nil {
				t.Fatal(err)
			}
			if err := store.DeleteIncoming(ctx, "alice", it.ID); err != nil {
				t.Fatal(err)
			}
			got, err := tryDecrypt(ct, key)
			if err != nil {
				t.Fatalf("stored item does not decrypt: %v", err)
			}
			ours(t, got)
		}
		if l, _, err := store.ListIncoming(ctx, "bob", 1); err != nil || len(l) != 0 {
			t.Fatalf("bob, who has no key, has %d items (%v)", len(l), err)
		}

		// The MX still serves.
		pc, err := net.Dial(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		if err := fuzzconn.SMTPProbe(pc, fuzzTimeout); err != nil {
			t.Fatal(err)
		}
	})
}
