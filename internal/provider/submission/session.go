package submission

import (
	"context"
	"errors"
	"io"
	"net/mail"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/provider/httpapi"
	"github.com/bitmask-go/bitmask/internal/provider/mx"
	"github.com/bitmask-go/bitmask/internal/provider/smtpserver"
	"github.com/bitmask-go/bitmask/internal/provider/storage"
)

// backend makes a session per connection (go-smtp makes a new one after
// STARTTLS, so nothing said before TLS survives it).
type backend struct {
	s   *Submission
	l   *smtpserver.Listener
	ctx context.Context
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: b.s, l: b.l, ctx: b.ctx, c: c, tc: smtpserver.ConnOf(c.Conn())}, nil
}

// session is one client's conversation.
type session struct {
	s   *Submission
	l   *smtpserver.Listener
	ctx context.Context
	c   *smtp.Conn
	tc  *smtpserver.Conn

	login   string // set by AUTH
	address string // login@DOMAIN
	// token is the session token AUTH was given, checked again at each
	// MAIL: a device revoked or an account deleted after AUTH must not
	// go on sending on a connection that outlived its session.
	token string

	from   string
	size   int64
	local  []string // recipients at our domain, as written
	remote []string // other recipients, normalized
	seen   map[string]bool
	// requireTLS: MAIL FROM had REQUIRETLS (RFC 8689).
	requireTLS bool
}

// Replies.
var (
	errAuthRequired    = smtpserver.Reply(530, smtp.EnhancedCode{5, 7, 0}, "Authentication required")
	errAuthTemp        = smtpserver.Reply(454, smtp.EnhancedCode{4, 7, 0}, "Temporary authentication failure, try again later")
	errSessionEnded    = smtpserver.Reply(530, smtp.EnhancedCode{5, 7, 0}, "Your session has ended (device revoked, logged out or account deleted); authenticate again")
	errNotYours        = smtpserver.Reply(553, smtp.EnhancedCode{5, 7, 1}, "Sender address must be your own address")
	errBadAddr         = smtpserver.Reply(553, smtp.EnhancedCode{5, 1, 3}, "Bad recipient address syntax")
	errLiteral         = smtpserver.Reply(550, smtp.EnhancedCode{5, 1, 2}, "Address literals are not accepted as destinations")
	errFromHeader      = smtpserver.Reply(550, smtp.EnhancedCode{5, 7, 1}, "The From header field must be your own address")
	errNoFrom          = smtpserver.Reply(550, smtp.EnhancedCode{5, 6, 0}, "The message has no From header field")
	errRequireTLSPlain = smtpserver.Reply(530, smtp.EnhancedCode{5, 7, 10}, "REQUIRETLS needs a TLS session")
)

func (ss *session) Reset() {
	ss.from, ss.size, ss.local, ss.remote, ss.seen = "", 0, nil, nil, nil
	ss.requireTLS = false
}

func (ss *session) Logout() error { return nil }

func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain} }

// Auth takes PLAIN (RFC 4616): the username is the login (or
// LOGIN@DOMAIN), the password a session token of the provider API.
// go-smtp refuses AUTH before TLS (523 5.7.10) and does not offer it.
func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		login, ok := ss.loginOf(username)
		if !ok {
			return smtp.ErrAuthFailed
		}
		if identity != "" {
			if id, ok := ss.loginOf(identity); !ok || id != login {
				return smtp.ErrAuthFailed
			}
		}
		got, err := ss.s.p.CheckToken(ss.ctx, password)
		if err != nil {
			if isInvalidToken(err) {
				ss.s.log.Info("submission: authentication failed", "login", login, "remote", ss.peer())
				return smtp.ErrAuthFailed
			}
			ss.s.log.Error("submission: token check failed", "err", err)
			return errAuthTemp
		}
		if got != login {
			ss.s.log.Info("submission: authentication failed: token of another user", "login", login, "remote", ss.peer())
			return smtp.ErrAuthFailed
		}
		ss.login = login
		ss.address = login + "@" + ss.s.p.Domain()
		ss.token = password
		return nil
	}), nil
}

// isInvalidToken tells a refused token from a failing store.
func isInvalidToken(err error) bool {
	return errors.Is(err, httpapi.ErrInvalidToken) || errors.Is(err, storage.ErrNotFound)
}

// loginOf maps an AUTH username (login or login@DOMAIN, any case) to a
// login.
func (ss *session) loginOf(user string) (string, bool) {
	user = strings.ToLower(strings.TrimSpace(user))
	if local, domain, ok := strings.Cut(user, "@"); ok {
		if smtpserver.NormDomain(domain) != smtpserver.NormDomain(ss.s.p.Domain()) {
			return "", false
		}
		user = local
	}
	if user == "" || len(user) > 64 {
		return "", false
	}
	return user, true
}

func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	if ss.login == "" {
		return errAuthRequired
	}
	if ss.l.ShuttingDown() {
		return smtpserver.ErrShuttingDown
	}
	if got, err := ss.s.p.CheckToken(ss.ctx, ss.token); err != nil || got != ss.login {
		if err == nil || isInvalidToken(err) {
			ss.s.log.Info("submission: session ended since AUTH", "login", ss.login, "remote", ss.peer())
			ss.login, ss.address, ss.token = "", "", ""
			return errSessionEnded
		}
		ss.s.log.Error("submission: token check failed", "err", err)
		return errAuthTemp
	}
	ss.Reset()
	// RFC 6409 §6.1: the MSA may refuse senders the user may not use;
	// a user has exactly one address, and no null sender.
	if !strings.EqualFold(from, ss.address) {
		ss.s.log.Info("submission: sender refused", "login", ss.login, "from", from)
		return errNotYours
	}
	if opts != nil && opts.RequireTLS {
		// Submission is TLS only (AUTH is), but go-smtp would take
		// the parameter anywhere.
		if _, ok := ss.c.TLSConnectionState(); !ok {
			return errRequireTLSPlain
		}
		ss.requireTLS = true
	}
	if opts != nil && opts.Size > ss.s.cfg.MaxSize {
		// Refused before any data; nothing is sized from the hint.
		return smtpserver.ErrTooBig
	}
	ss.from = ss.address
	if opts != nil {
		ss.size = opts.Size
	}
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.login == "" {
		return errAuthRequired
	}
	if ss.l.ShuttingDown() {
		return smtpserver.ErrShuttingDown
	}
	at := strings.LastIndexByte(to, '@')
	if at <= 0 || at == len(to)-1 {
		return errBadAddr
	}
	local, domain := to[:at], to[at+1:]
	if strings.HasPrefix(domain, "[") {
		return errLiteral
	}
	domain = smtpserver.NormDomain(domain)
	if !validDomain(domain) {
		return errBadAddr
	}
	if ss.seen == nil {
		ss.seen = map[string]bool{}
	}
	if domain == smtpserver.NormDomain(ss.s.p.Domain()) {
		// Refused here as the MX refuses it: 550 5.1.1 no such user,
		// 450 4.7.1 no usable key yet.
		if _, err := ss.s.local.CheckLocal(ss.ctx, to); err != nil {
			ss.s.log.Info("submission: local recipient refused", "login", ss.login, "rcpt", to, "err", err)
			return err
		}
		if key := strings.ToLower(to); !ss.seen[key] {
			ss.seen[key] = true
			ss.local = append(ss.local, to)
		}
		return nil
	}
	addr := local + "@" + domain
	if !ss.seen[strings.ToLower(addr)] {
		ss.seen[strings.ToLower(addr)] = true
		ss.remote = append(ss.remote, addr)
	}
	return nil
}

func (ss *session) peer() string {
	if a := ss.c.Conn().RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}

// Data takes the message: local copies are delivered through the MX's
// path, remote recipients go into the outbound queue; 250 only after
// both are durable.
func (ss *session) Data(r io.Reader) error {
	if ss.login == "" {
		return errAuthRequired
	}
	if !ss.l.BeginData(ss.tc) {
		return smtpserver.ErrShuttingDown
	}
	defer ss.l.EndData(ss.tc)
	s := ss.s
	id := smtpserver.NewID()
	// Received into the spool (memory, then disk) and taken into
	// memory whole only when the memory budget has room: the queue and
	// the local delivery take the message as bytes, once.
	body, err := spoolOf(s).Receive(r, s.cfg.MaxSize)
	if err != nil {
		s.log.Info("submission: message not received", "id", id, "login", ss.login, "err", err)
		return err
	}
	defer body.Close()
	msg, err := body.Bytes(ss.ctx)
	if err != nil {
		s.log.Warn("submission: message deferred: no room in the memory budget", "id", id, "login", ss.login, "size", body.Size())
		return err
	}
	if err := checkFrom(msg, ss.address); err != nil {
		s.log.Info("submission: message refused", "id", id, "login", ss.login, "reason", err.Error())
		return err
	}
	ctx := ss.ctx
	if len(ss.local) > 0 {
		lm := mx.LocalMessage{From: ss.from, Recipients: ss.local, Data: msg, AuthUser: ss.address, ID: id, RequireTLS: ss.requireTLS}
		if st, ok := ss.c.TLSConnectionState(); ok {
			lm.TLS = &st
		}
		if err := s.local.DeliverLocal(ctx, lm); err != nil {
			var se *smtp.SMTPError
			if errors.As(err, &se) {
				return se
			}
			s.log.Error("submission: local delivery failed", "id", id, "err", err)
			return smtpserver.ErrTempFail
		}
	}
	if len(ss.remote) > 0 {
		now := time.Now().UTC()
		item := &storage.OutboundItem{
			Login: ss.login, From: ss.from, Size: len(msg),
			Created: now, NextAttempt: now, Message: msg,
			RequireTLS: ss.requireTLS,
		}
		for _, a := range ss.remote {
			item.Recipients = append(item.Recipients, storage.OutboundRecipient{Address: a})
		}
		if err := s.queue.PutOutbound(context.WithoutCancel(ctx), item); err != nil {
			s.log.Error("submission: queueing failed", "id", id, "err", err)
			return smtpserver.ErrTempFail
		}
		s.kick()
		id = item.ID
	}
	s.log.Info("submission: message accepted", "id", id, "login", ss.login,
		"local", len(ss.local), "remote", len(ss.remote), "size", len(msg), "requiretls", ss.requireTLS)
	return nil
}

// spoolOf is the spool the submission service receives into: the MX's
// when it delivers locally through the MX (one memory budget for both
// servers), else one of its own in DataDir/spool.
func spoolOf(s *Submission) *smtpserver.Spool {
	if sl, ok := s.local.(interface{ Spool() *smtpserver.Spool }); ok {
		return sl.Spool()
	}
	ownSpoolOnce.Do(func() {
		dir := ""
		if s.cfg.DataDir != "" {
			dir = filepath.Join(s.cfg.DataDir, "spool")
		}
		ownSpool = smtpserver.NewSpool(smtpserver.SpoolConfig{Dir: dir})
	})
	return ownSpool
}

var (
	ownSpoolOnce sync.Once
	ownSpool     *smtpserver.Spool
)

// checkFrom requires the message's From field to be the user's address,
// alone: we sign it with the provider's DKIM key, so it must not claim
// to be someone else (RFC 6409 §8 lets an MSA enforce this).
func checkFrom(msg []byte, address string) error {
	h := headerFields(msg)
	var from []string
	for _, f := range h {
		if strings.EqualFold(f.name, "From") {
			from = append(from, f.value)
		}
	}
	if len(from) == 0 {
		return errNoFrom
	}
	if len(from) > 1 {
		return errFromHeader
	}
	list, err := mail.ParseAddressList(from[0])
	if err != nil || len(list) != 1 || !strings.EqualFold(list[0].Address, address) {
		return errFromHeader
	}
	return nil
}

// validDomain accepts an ASCII host name of at least two labels (A-
// labels for internationalized names).
func validDomain(d string) bool {
	if len(d) == 0 || len(d) > 253 || !strings.Contains(d, ".") {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
