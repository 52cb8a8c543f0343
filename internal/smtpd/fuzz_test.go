package smtpd_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bitmask-go/bitmask/internal/fuzzconn"
	"github.com/bitmask-go/bitmask/internal/smtpd"
)

const (
	fuzzAddress = "alice@bitmask.test"
	fuzzToken   = "local-token-0123456789"
	fuzzTimeout = 20 * time.Second
)

// fuzzAccount takes what the server enqueues and checks it at once.
type fuzzAccount struct {
	mu   sync.Mutex
	errs []error
	n    int
}

func (a *fuzzAccount) Address() string { return fuzzAddress }

// Enqueue checks what the outbox would get: from the account, to at
// least one address, and (read independently of the server) a header
// with one From field holding the account's address alone.
func (a *fuzzAccount) Enqueue(from string, rcpts []string, raw []byte) error {
	var err error
	switch {
	case from != fuzzAddress:
		err = fmt.Errorf("enqueued from %q", from)
	case len(rcpts) == 0:
		err = errors.New("enqueued without a recipient")
	}
	for _, r := range rcpts {
		if !strings.Contains(r, "@") {
			err = fmt.Errorf("enqueued for %q", r)
		}
	}
	if m, perr := mail.ReadMessage(bytes.NewReader(raw)); perr == nil {
		froms := m.Header["From"]
		if len(froms) != 1 {
			err = fmt.Errorf("enqueued a message with %d From fields", len(froms))
		} else if l, perr := mail.ParseAddressList(froms[0]); perr == nil && (len(l) != 1 || l[0].Address != fuzzAddress && !strings.EqualFold(l[0].Address, fuzzAddress)) {
			err = fmt.Errorf("enqueued a message from %q", froms[0])
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n++
	if err != nil {
		a.errs = append(a.errs, err)
	}
	return nil
}

func (a *fuzzAccount) take() []error {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.errs
	a.errs = nil
	return e
}

type fuzzAuth struct{ acct *fuzzAccount }

func (f fuzzAuth) CheckSMTP(_ context.Context, user, pass string) (smtpd.Account, error) {
	if strings.EqualFold(user, fuzzAddress) && pass == fuzzToken {
		return f.acct, nil
	}
	return nil, errors.New("wrong address or token")
}

// FuzzSMTPDSession is a mail client of bitmaskd's local SMTP server that
// sends the fuzzer's bytes, commands and message data alike, to one
// server started once per fuzzing process, then closes its side. The
// server must not panic (go-smtp recovers a panic and logs it: the log
// is watched), must answer only with well-formed reply lines, starting
// with its greeting and with at least one reply when a command line
// came, must close the connection once the input has ended, and must
// still serve the next client. What it hands to the outbox must be from
// the logged-in account, to at least one address, with one From field
// that is the account's address.
func FuzzSMTPDSession(f *testing.F) {
	plain := "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+fuzzAddress+"\x00"+fuzzToken)) + "\r\n"
	login := "AUTH LOGIN\r\n" + base64.StdEncoding.EncodeToString([]byte(fuzzAddress)) + "\r\n" + base64.StdEncoding.EncodeToString([]byte(fuzzToken)) + "\r\n"
	const (
		ehlo = "EHLO [127.0.0.1]\r\n"
		from = "MAIL FROM:<alice@bitmask.test>\r\n"
		rcpt = "RCPT TO:<bob@example.org>\r\n"
		msg  = "From: Alice <alice@bitmask.test>\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nHello.\r\n"
	)
	for _, s := range []string{
		ehlo + plain + from + rcpt + "DATA\r\n" + msg + ".\r\nQUIT\r\n",
		ehlo + login + from + rcpt + "RCPT TO:<Carol <c@example.org>>\r\nRCPT TO:<nobody>\r\nDATA\r\n" + msg + ".\r\n",
		ehlo + "AUTH LOGIN " + base64.StdEncoding.EncodeToString([]byte(fuzzAddress)) + "\r\n" + base64.StdEncoding.EncodeToString([]byte(fuzzToken)) + "\r\n" + from + rcpt + "BDAT 30\r\nFrom: alice@bitmask.test\r\n\r\nhiBDAT 0 LAST\r\n",
		ehlo + plain + "MAIL FROM:<bob@example.org>\r\n" + from + rcpt + "DATA\r\nFrom: bob@example.org\r\n\r\nx\r\n.\r\n",
		ehlo + plain + from + rcpt + "DATA\r\nFrom: alice@bitmask.test\r\nFrom: bob@example.org\r\n\r\nx\r\n.\r\n",
		ehlo + plain + from + rcpt + "DATA\r\nFrom: alice@bitmask.test, bob@example.org\r\n\r\nx\r\n.\r\n",
		ehlo + plain + from + rcpt + "DATA\r\nFrom: alice@bitmask.test, <ALICE@bitmask.test>\r\n\r\nx\r\n.\r\n",
		ehlo + plain + from + rcpt + "DATA\r\nno header\r\n.\r\n" + "MAIL FROM:<alice@bitmask.test> SMTPUTF8 BODY=BINARYMIME\r\n" + rcpt + "BDAT 4 LAST\r\nabcd",
		ehlo + "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("bob\x00"+fuzzAddress+"\x00"+fuzzToken)) + "\r\nAUTH PLAIN =\r\nAUTH CRAM-MD5\r\n" + from,
		ehlo + plain + from + rcpt + "DATA\r\n" + msg, // cut off in DATA
		ehlo + "STARTTLS\r\n\x16\x03\x01\x00\x05hello",
		"HELO x\r\nRSET\r\nNOOP\r\nVRFY alice\r\n\r\nQUIT\r\n",
	} {
		f.Add([]byte(s))
	}

	var logs fuzzconn.PanicLog
	acct := &fuzzAccount{}
	srv := smtpd.New(fuzzAuth{acct}, smtpd.Config{TLS: selfSigned(f), MaxRecipients: 10, Logger: logs.Logger()})
	dial := fuzzconn.Serve(f, srv.Serve)

	f.Fuzz(func(t *testing.T, in []byte) {
		tr, err := fuzzconn.Session(dial(t), in, fuzzTimeout)
		if p := logs.Take(); len(p) > 0 {
			t.Fatalf("the server panicked:\n%s", strings.Join(p, "\n"))
		}
		if err != nil {
			t.Fatal(err)
		}
		if errs := acct.take(); len(errs) > 0 {
			t.Fatal(errors.Join(errs...))
		}
		fuzzconn.CheckSMTP(t, in, tr)
		if err := fuzzconn.SMTPProbe(dial(t), fuzzTimeout); err != nil {
			t.Fatal(err)
		}
	})
}

func selfSigned(t testing.TB) *tls.Config {
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
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}
