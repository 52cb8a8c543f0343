package mx_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/emersion/go-smtp"
	"github.com/foxcpp/go-mockdns"

	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/provider/mx"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
	"github.com/bitmask-go/bitmask/internal/testenv"
	"github.com/bitmask-go/bitmask/pkg/pgpkey"
)

const hostname = "mx.example.test"

// dkimKey signs mail of pass.example in the tests; its public half is in
// testZones.
var dkimKey = func() ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}()

// testZones is the DNS the tests' MX sees. The client connects from
// 127.0.0.1.
func testZones() map[string]mockdns.Zone {
	temp := &net.DNSError{Err: "server failure", Name: "temp", IsTemporary: true}
	pub := base64.StdEncoding.EncodeToString(dkimKey.Public().(ed25519.PublicKey))
	return map[string]mockdns.Zone{
		// SPF pass, DKIM key, DMARC reject.
		"pass.example.":                 {TXT: []string{"v=spf1 ip4:127.0.0.1 -all"}},
		"sel._domainkey.pass.example.":  {TXT: []string{"v=DKIM1; k=ed25519; p=" + pub}},
		"_dmarc.pass.example.":          {TXT: []string{"v=DMARC1; p=reject; adkim=r; aspf=r"}},
		"strict.example.":               {TXT: []string{"v=spf1 ip4:127.0.0.1 -all"}},
		"_dmarc.strict.example.":        {TXT: []string{"v=DMARC1; p=reject; adkim=s; aspf=s"}},
		"fail.example.":                 {TXT: []string{"v=spf1 ip4:192.0.2.1 -all"}},
		"_dmarc.fail.example.":          {TXT: []string{"v=DMARC1; p=quarantine"}},
		"soft.example.":                 {TXT: []string{"v=spf1 ~all"}},
		"temp.example.":                 {Err: temp},
		"_dmarc.temp.example.":          {Err: temp},
		"sel._domainkey.temp.example.":  {Err: temp},
		"broken.example.":               {TXT: []string{"v=spf1 ip4:not-an-ip -all"}},
		"client.example.":               {TXT: []string{"v=spf1 ip4:127.0.0.1 -all"}},
		"sel._domainkey.nokey.example.": {TXT: []string{"v=DKIM1; k=ed25519; p="}},
	}
}

// world is a real leapd with an MX in front of it.
type world struct {
	t    testing.TB
	p    *testenv.Provider
	mx   *mx.MX
	addr string // SMTP on 127.0.0.1
	keys map[string]*openpgp.Entity

	cancel context.CancelFunc
	done   chan error
}

type worldOptions struct {
	cfg  mx.Config
	wrap func(mx.Provider) mx.Provider
	lmtp string // also serve LMTP on this unix socket
	tls  bool   // offer STARTTLS with the provider's certificate
	// quota is the provider's per-user storage quota (quota_test.go).
	quota httpapi.Quota
}

func newWorld(t testing.TB, o worldOptions) *world {
	t.Helper()
	p := testenv.StartProvider(t, testenv.Options{Config: httpapi.Config{Quota: o.quota}})
	w := &world{t: t, p: p, keys: map[string]*openpgp.Entity{}}
	var prov mx.Provider = p
	if o.wrap != nil {
		prov = o.wrap(p)
	}
	cfg := o.cfg
	if cfg.Hostname == "" {
		cfg.Hostname = hostname
	}
	if cfg.Resolver == nil {
		cfg.Resolver = &mockdns.Resolver{Zones: testZones()}
	}
	if cfg.Logger == nil {
		cfg.Logger = testenv.Logger(t)
	}
	if o.tls {
		cfg.TLSConfig = p.TLSConfig()
	}
	w.mx = mx.New(prov, cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.done = make(chan error, 2)
	n := 1
	go func() { w.done <- w.mx.ServeSMTP(ctx, ln) }()
	if o.lmtp != "" {
		lln, err := net.Listen("unix", o.lmtp)
		if err != nil {
			t.Fatal(err)
		}
		n++
		go func() { w.done <- w.mx.ServeLMTP(ctx, lln) }()
	}
	// Stop the MX before the provider (cleanups run last-in first-out).
	t.Cleanup(func() {
		cancel()
		for range n {
			if err := <-w.done; err != nil {
				t.Errorf("MX returned %v", err)
			}
		}
	})
	return w
}

// addUser makes an account; with a key, publishes it and remembers the
// private half.
func (w *world) addUser(login string, withKey bool) *openpgp.Entity {
	w.t.Helper()
	ctx := context.Background()
	u := &storage.User{Login: login, SRPSalt: []byte("salt"), SRPVerifier: []byte("verifier"), Created: time.Now()}
	if err := w.p.Store.CreateUser(ctx, u, ""); err != nil {
		w.t.Fatal(err)
	}
	if !withKey {
		return nil
	}
	e := newKey(w.t, login+"@"+testenv.Domain)
	w.publish(login, e)
	return e
}

func newKey(t testing.TB, address string) *openpgp.Entity {
	t.Helper()
	e, err := pgpkey.Generate(address, 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (w *world) publish(login string, e *openpgp.Entity) {
	w.t.Helper()
	pub, err := pgpkey.ArmorPublic(e)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.p.Store.PutKey(context.Background(), login+"@"+testenv.Domain, []byte(pub)); err != nil {
		w.t.Fatal(err)
	}
	w.keys[login] = e
}

// dial opens an SMTP client that said EHLO client.example.
func (w *world) dial() *smtp.Client {
	w.t.Helper()
	c, err := smtp.Dial(w.addr)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := c.Hello("client.example"); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { c.Close() })
	return c
}

// send sends msg on a new connection.
func (w *world) send(from string, to []string, msg string) error {
	w.t.Helper()
	c := w.dial()
	err := sendOn(c, from, to, msg)
	if err == nil {
		_ = c.Quit()
	}
	return err
}

func sendOn(c *smtp.Client, from string, to []string, msg string) error {
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r, nil); err != nil {
			_ = c.Reset()
			return err
		}
	}
	wc, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(wc, msg); err != nil {
		return err
	}
	return wc.Close()
}

// items are the ciphertexts in login's incoming queue, oldest first.
func (w *world) items(login string) [][]byte {
	w.t.Helper()
	ctx := context.Background()
	list, _, err := w.p.Store.ListIncoming(ctx, login, 1000)
	if err != nil {
		w.t.Fatal(err)
	}
	var out [][]byte
	for _, it := range list {
		b, err := w.p.Store.Incoming(ctx, login, it.ID)
		if err != nil {
			w.t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// only is login's single stored message, decrypted with login's key.
func (w *world) only(login string) string {
	w.t.Helper()
	its := w.items(login)
	if len(its) != 1 {
		w.t.Fatalf("%s has %d incoming items, want 1", login, len(its))
	}
	return decrypt(w.t, its[0], w.keys[login])
}

// decrypt opens a stored item with key and checks its form: encrypted,
// not signed, a binary literal without a file name.
func decrypt(t testing.TB, ct []byte, key *openpgp.Entity) string {
	t.Helper()
	b, err := tryDecrypt(ct, key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tryDecrypt(ct []byte, key *openpgp.Entity) (string, error) {
	md, err := openpgp.ReadMessage(bytes.NewReader(ct), openpgp.EntityList{key}, nil, nil)
	if err != nil {
		return "", err
	}
	b, err := io.ReadAll(md.UnverifiedBody)
	if err != nil {
		return "", err
	}
	switch {
	case !md.IsEncrypted:
		return "", errors.New("item is not encrypted")
	case md.IsSigned:
		return "", errors.New("item is signed")
	case md.LiteralData == nil || !md.LiteralData.IsBinary || md.LiteralData.FileName != "":
		return "", fmt.Errorf("literal data: %+v", md.LiteralData)
	}
	return string(b), nil
}

// recipientKeyIDs are the key IDs of an item's PKESK packets.
func recipientKeyIDs(t testing.TB, ct []byte) []uint64 {
	t.Helper()
	var ids []uint64
	pr := packet.NewReader(bytes.NewReader(ct))
	for {
		p, err := pr.Next()
		if err != nil {
			t.Fatalf("reading packets: %v", err)
		}
		ek, ok := p.(*packet.EncryptedKey)
		if !ok {
			return ids
		}
		ids = append(ids, ek.KeyId)
	}
}

func encryptionKeyID(t testing.TB, e *openpgp.Entity) uint64 {
	t.Helper()
	k, ok := e.EncryptionKey(time.Now())
	if !ok {
		t.Fatal("no encryption key")
	}
	return k.PublicKey.KeyId
}

// ours splits a stored message into our two fields and the rest.
func ours(t testing.TB, msg string) (ar, received, rest string) {
	t.Helper()
	var fields []string
	r := bufio.NewReader(strings.NewReader(msg))
	pos := 0
	for len(fields) < 2 {
		start := pos
		for {
			line, err := r.ReadString('\n')
			pos += len(line)
			if err != nil {
				t.Fatalf("stored message ends inside our header fields: %q", msg)
			}
			next, _ := r.Peek(1)
			if len(next) == 0 || (next[0] != ' ' && next[0] != '\t') {
				break
			}
		}
		fields = append(fields, msg[start:pos])
	}
	if !strings.HasPrefix(fields[0], "Authentication-Results: "+hostname+";") {
		t.Fatalf("first field is not our Authentication-Results: %q", fields[0])
	}
	if !strings.HasPrefix(fields[1], "Received: from ") {
		t.Fatalf("second field is not our Received: %q", fields[1])
	}
	return fields[0], fields[1], msg[pos:]
}

// wantReply checks err is the SMTP reply code with enhanced code enh.
func wantReply(t testing.TB, err error, code int, enh string) {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want SMTP reply %d %s", err, code, enh)
	}
	got := fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	if se.Code != code || got != enh {
		t.Fatalf("got reply %d %s %q, want %d %s", se.Code, got, se.Message, code, enh)
	}
}

// raw is a hand-driven SMTP connection, for input a client library
// would not send.
type raw struct {
	t  testing.TB
	c  net.Conn
	tp *textproto.Conn
}

func dialRaw(t testing.TB, network, addr string) *raw {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &raw{t: t, c: c, tp: textproto.NewConn(c)}
	r.expect(220)
	return r
}

func (r *raw) expect(code int) string {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	got, msg, err := r.tp.ReadResponse(code)
	if err != nil {
		r.t.Fatalf("want %d, got %d %q: %v", code, got, msg, err)
	}
	return msg
}

func (r *raw) cmd(code int, format string, args ...any) string {
	r.t.Helper()
	if err := r.tp.PrintfLine(format, args...); err != nil {
		r.t.Fatal(err)
	}
	return r.expect(code)
}

// data sends DATA with msg, dot-stuffed by hand, and returns the reply;
// the message as the server gets it is msg with a final CRLF.
func (r *raw) data(msg []byte) (int, string, error) {
	r.t.Helper()
	r.cmd(354, "DATA")
	if err := writeData(r.c, msg); err != nil {
		return 0, "", err
	}
	_ = r.c.SetReadDeadline(time.Now().Add(60 * time.Second))
	return r.tp.ReadResponse(250)
}

func writeData(w io.Writer, msg []byte) error {
	var b bytes.Buffer
	if bytes.HasPrefix(msg, []byte(".")) {
		b.WriteByte('.')
	}
	b.Write(bytes.ReplaceAll(msg, []byte("\r\n."), []byte("\r\n..")))
	if !bytes.HasSuffix(msg, []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	b.WriteString(".\r\n")
	_, err := w.Write(b.Bytes())
	return err
}

// asReceived is msg as the server gets it from writeData.
func asReceived(msg []byte) string {
	if !bytes.HasSuffix(msg, []byte("\r\n")) {
		return string(msg) + "\r\n"
	}
	return string(msg)
}
