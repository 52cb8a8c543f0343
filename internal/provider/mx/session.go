package mx

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/provider/smtpserver"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
)

// backend makes a session per connection (go-smtp calls NewSession at
// the first EHLO/LHLO, and again after STARTTLS).
type backend struct {
	m    *MX
	l    *smtpserver.Listener
	lmtp bool
	ctx  context.Context
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	s := &session{m: b.m, l: b.l, ctx: b.ctx, c: c, tc: smtpserver.ConnOf(c.Conn())}
	if b.lmtp {
		s.proto = "LMTP"
	}
	return s, nil
}

// session is one client's conversation: a transaction at a time.
type session struct {
	m     *MX
	l     *smtpserver.Listener
	ctx   context.Context
	c     *smtp.Conn
	tc    *smtpserver.Conn
	proto string // "LMTP", or "" for SMTP

	from  string
	size  int64 // the size MAIL FROM announced, 0 if none
	rcpts []*recipient
	// requireTLS: MAIL FROM had REQUIRETLS (requiretls.go).
	requireTLS bool
}

// recipient is an accepted RCPT.
type recipient struct {
	rcpt    string // as the client wrote it, go-smtp's key for LMTP replies
	login   string
	address string // login@DOMAIN, the key directory's name for it
	armored []byte // the key as checked at RCPT time
	key     *openpgp.Entity
	room    int64 // the account's room for mail at RCPT time (quota.go)
}

func (s *session) Reset() {
	s.from = ""
	s.size = 0
	s.rcpts = nil
	s.requireTLS = false
}

func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if s.l.ShuttingDown() {
		return smtpserver.ErrShuttingDown
	}
	s.Reset()
	if err := s.checkRequireTLS(opts); err != nil {
		return err
	}
	if opts != nil && opts.Size > s.m.cfg.MaxSize {
		// Refused before any data; nothing is sized from the hint.
		return smtpserver.ErrTooBig
	}
	s.from = from
	if opts != nil {
		s.size = opts.Size
		s.requireTLS = opts.RequireTLS
	}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.l.ShuttingDown() {
		return smtpserver.ErrShuttingDown
	}
	r, err := s.m.recipient(s.ctx, to, time.Now())
	if err == nil && s.size > r.room {
		err = errFull // the announced size does not fit (quota.go)
	}
	if err != nil {
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			s.m.log.Info("mx: recipient refused", "from", s.from, "rcpt", to, "reply", se.Code, "remote", s.remote())
		}
		return err
	}
	s.rcpts = append(s.rcpts, r)
	return nil
}

func (s *session) remote() string {
	if a := s.c.Conn().RemoteAddr(); a != nil && a.String() != "" {
		return a.String()
	}
	return "local"
}

// Replies at RCPT time.
var (
	errRelay   = smtpserver.Reply(550, smtp.EnhancedCode{5, 7, 1}, "Relay access denied: we only accept mail for our own domain")
	errNoUser  = smtpserver.Reply(550, smtp.EnhancedCode{5, 1, 1}, "No such user here")
	errBadAddr = smtpserver.Reply(550, smtp.EnhancedCode{5, 1, 3}, "Bad recipient address syntax")
	errNoKey   = smtpserver.Reply(450, smtp.EnhancedCode{4, 7, 1}, "Recipient has no usable encryption key yet, try again later")
	errLookup  = smtpserver.Reply(451, smtp.EnhancedCode{4, 3, 0}, "Temporary failure looking up the recipient, try again later")
)

// recipient maps an RCPT address to an account whose key we can encrypt
// to, or returns the reply refusing it.
func (m *MX) recipient(ctx context.Context, to string, now time.Time) (*recipient, error) {
	local, domain := to, ""
	if at := strings.LastIndexByte(to, '@'); at >= 0 {
		local, domain = to[:at], to[at+1:]
	} else if !strings.EqualFold(to, "postmaster") {
		return nil, errBadAddr
	}
	if domain != "" && smtpserver.NormDomain(domain) != smtpserver.NormDomain(m.p.Domain()) {
		return nil, errRelay
	}
	login := strings.ToLower(local)
	if i := strings.IndexByte(login, '+'); i >= 0 {
		login = login[:i]
	}
	if login == "" || len(login) > 64 || strings.ContainsAny(login, " \t\r\n\x00/") {
		return nil, errNoUser
	}
	ok, err := m.p.UserExists(ctx, login)
	if err != nil {
		m.log.Error("mx: user lookup failed", "login", login, "err", err)
		return nil, errLookup
	}
	if !ok {
		return nil, errNoUser
	}
	r := &recipient{rcpt: to, login: login, address: login + "@" + m.p.Domain()}
	r.armored, err = m.p.PublicKey(ctx, r.address)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errNoKey
	} else if err != nil {
		m.log.Error("mx: key lookup failed", "address", r.address, "err", err)
		return nil, errLookup
	}
	if r.key, err = parseKey(r.armored, now); err != nil {
		m.log.Warn("mx: recipient's key is unusable", "address", r.address, "err", err)
		return nil, errNoKey
	}
	if r.room, err = m.roomFor(ctx, login); err != nil {
		return nil, err
	}
	return r, nil
}

// currentKey is r's key now: the one checked at RCPT time unless the
// user published another since (then that one, if usable).
func (m *MX) currentKey(ctx context.Context, r *recipient, now time.Time) (*openpgp.Entity, error) {
	armored, err := m.p.PublicKey(ctx, r.address)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errNoKey
	} else if err != nil {
		m.log.Error("mx: key lookup failed", "address", r.address, "err", err)
		return nil, errLookup
	}
	if bytes.Equal(armored, r.armored) {
		return r.key, nil
	}
	key, err := parseKey(armored, now)
	if err != nil {
		m.log.Warn("mx: recipient's key is unusable", "address", r.address, "err", err)
		return nil, errNoKey
	}
	return key, nil
}

// Data takes the message for all recipients: 250 only when every copy
// is stored (smtpReply, quota.go, says what else).
func (s *session) Data(r io.Reader) error {
	errs, err := s.deliver(r)
	if err != nil {
		return err
	}
	return smtpReply(errs)
}

// LMTPData takes the message and replies per recipient (RFC 2033 §4.2).
func (s *session) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	errs, err := s.deliver(r)
	if err != nil {
		return err // go-smtp gives it to every recipient
	}
	for i, rc := range s.rcpts {
		status.SetStatus(rc.rcpt, errs[i])
	}
	return nil
}

// deliver reads the message, checks it, and encrypts and delivers a copy
// per account. err is for the whole transaction; otherwise errs has the
// outcome for each of s.rcpts.
func (s *session) deliver(r io.Reader) (errs []error, err error) {
	if !s.l.BeginData(s.tc) {
		return nil, smtpserver.ErrShuttingDown
	}
	defer s.l.EndData(s.tc)
	m := s.m
	id := smtpserver.NewID()
	// Received into the spool (memory, then disk), and taken into
	// memory whole only when the memory budget has room for it and for
	// one account's ciphertext of it at a time (as large again).
	body, err := m.spool.Receive(r, m.cfg.MaxSize)
	if err != nil {
		if err == smtpserver.ErrTooBig {
			m.log.Info("mx: message too big", "id", id, "from", s.from, "remote", s.remote(), "limit", m.cfg.MaxSize)
		} else {
			m.log.Info("mx: message not received", "id", id, "from", s.from, "remote", s.remote(), "err", err)
		}
		return nil, err
	}
	defer body.Close()
	ctx := s.ctx
	msg, err := body.BytesWith(ctx, body.Size())
	if err != nil {
		m.log.Warn("mx: message deferred: no room in the memory budget", "id", id, "from", s.from, "remote", s.remote(), "size", body.Size())
		return nil, err
	}

	now := time.Now()
	env := envelope{from: s.from, helo: s.c.Hostname()}
	if s.proto == "" {
		if a, ok := s.c.Conn().RemoteAddr().(*net.TCPAddr); ok {
			env.ip = a.IP
		}
	}
	// Every account's key first, so a key that went away fails the
	// message before any copy is stored (no duplicates on the retry).
	type account struct {
		key  *openpgp.Entity
		rcpt string // the first RCPT address for it, for Received
		err  error
	}
	accounts := map[string]*account{}
	var order []string
	for _, rc := range s.rcpts {
		if accounts[rc.login] != nil {
			continue
		}
		a := &account{rcpt: rc.rcpt}
		a.key, a.err = m.currentKey(ctx, rc, now)
		if a.err == nil {
			a.err = m.fits(ctx, rc.login, int64(len(msg))) // quota.go
		}
		accounts[rc.login] = a
		order = append(order, rc.login)
	}
	if s.proto == "" {
		for _, login := range order {
			if err := accounts[login].err; err != nil && err != errTooBigForQuota {
				m.log.Info("mx: message deferred", "id", id, "from", s.from, "to", login, "err", err)
				return nil, smtpserver.ErrTempFail
			}
		}
	}

	parsed := splitMessage(msg)
	v := m.authenticate(ctx, env, msg, parsed)
	parts, removed := parsed.withoutOurResults(m.cfg.Hostname)
	ar := v.header(m.cfg.Hostname)

	keys := map[string][32]byte{}
	var skipped []string
	for _, login := range order {
		a := accounts[login]
		if a.err != nil {
			continue
		}
		if s.proto == "" {
			keys[login] = copyKey(s.from, login, msg)
			if m.partial.stored(keys[login], now) {
				// Stored by the attempt the sender is retrying.
				skipped = append(skipped, login)
				continue
			}
		}
		if ctx.Err() != nil {
			a.err = smtpserver.ErrShuttingDown
			continue
		}
		received := s.received(id, a.rcpt, now)
		ct, err := encrypt(a.key, now, append([][]byte{[]byte(ar), []byte(received)}, parts...)...)
		if err != nil {
			m.log.Error("mx: encryption failed", "id", id, "to", login, "err", err)
			a.err = smtpserver.ErrTempFail
			continue
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		err = m.p.Deliver(dctx, login, ct)
		cancel()
		if err != nil {
			m.log.Error("mx: delivery failed", "id", id, "to", login, "err", err)
			a.err = smtpserver.ErrTempFail
			continue
		}
	}

	errs = make([]error, len(s.rcpts))
	var ok, failed []string
	for i, rc := range s.rcpts {
		errs[i] = accounts[rc.login].err
	}
	for _, login := range order {
		if accounts[login].err == nil {
			ok = append(ok, login)
		} else {
			failed = append(failed, login)
		}
	}
	if s.proto == "" && len(keys) > 0 {
		var stored [][32]byte
		for _, login := range ok {
			stored = append(stored, keys[login])
		}
		if len(failed) > 0 {
			m.partial.remember(stored, now)
		} else {
			m.partial.forget(stored)
		}
	}
	spfRes, dkimRes, dmarcRes := v.summary()
	m.log.Info("mx: message received", "id", id, "proto", s.protoName(), "remote", s.remote(),
		"from", s.from, "delivered", ok, "failed", failed, "stored_before", skipped, "size", len(msg),
		"spf", spfRes, "dkim", dkimRes, "dmarc", dmarcRes, "removed_auth_results", removed)
	return errs, nil
}

func (s *session) protoName() string {
	if s.proto != "" {
		return s.proto
	}
	if _, ok := s.c.TLSConnectionState(); ok {
		return "ESMTPS"
	}
	return "ESMTP"
}

// received is our trace field (RFC 5321 §4.4), for one recipient's copy.
func (s *session) received(id, rcpt string, now time.Time) string {
	var b strings.Builder
	b.WriteString("Received: from ")
	helo := cleanToken(s.c.Hostname())
	if helo == "" {
		helo = "unknown"
	}
	b.WriteString(helo)
	if a, ok := s.c.Conn().RemoteAddr().(*net.TCPAddr); ok {
		ip := a.IP.String()
		if a.IP.To4() == nil {
			ip = "IPv6:" + ip
		}
		fmt.Fprintf(&b, " ([%s])", ip)
	}
	fmt.Fprintf(&b, "\r\n\tby %s (leapd) with %s", cleanToken(s.m.cfg.Hostname), s.protoName())
	if st, ok := s.c.TLSConnectionState(); ok {
		fmt.Fprintf(&b, "\r\n\t(version=%s cipher=%s)", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
	}
	if s.requireTLS {
		b.WriteString(requireTLSComment)
	}
	fmt.Fprintf(&b, "\r\n\tid %s\r\n\tfor <%s>;\r\n\t%s\r\n", id, cleanToken(rcpt), now.Format(time.RFC1123Z))
	return b.String()
}

// cleanToken is s with everything but printable ASCII other than
// space, parentheses, angle brackets and ";" replaced, at most 255
// bytes: safe as a domain or address in a Received field.
func cleanToken(s string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 255; i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>;\"\\", c) >= 0 {
			c = '?'
		}
		b.WriteByte(c)
	}
	return b.String()
}
