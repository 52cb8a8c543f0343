// Package smtpd is bitmaskd's local SMTP submission server on
// 127.0.0.1:2013 (RFC 6409 submission, RFC 5321). A mail client logs in
// with the account address and its local token (AUTH PLAIN or LOGIN,
// RFC 4954), optionally after STARTTLS with the localhost certificate. The
// envelope sender and the From header must be the account's address
// (else 553). The message is committed to the account's encrypted outbox
// before the 250; the outbox encrypts and relays it.
//
// Limits: a message of more than MaxMessageSize octets gets 552 5.3.4; a
// line (command or message) of more than MaxLineLength octets gets
// 500 5.4.0 and the connection is closed.
package smtpd

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/bitmask-go/bitmask/internal/recovered"
)

// MaxMessageSize is the largest message accepted.
const MaxMessageSize = 64 << 20

// MaxLineLength is the longest line accepted, with its CRLF.
const MaxLineLength = 1 << 20

// Account is what a logged-in client submits to.
type Account interface {
	Address() string
	Enqueue(from string, rcpts []string, raw []byte) error
}

// Auth checks a client's login: address and local token.
type Auth interface {
	CheckSMTP(ctx context.Context, username, password string) (Account, error)
}

// Config tunes the server.
type Config struct {
	TLS           *tls.Config
	MaxRecipients int // default 1000
	Logger        *slog.Logger
}

// Server is the local SMTP server.
type Server struct {
	auth Auth
	cfg  Config
}

// New makes a server.
func New(auth Auth, cfg Config) *Server {
	if cfg.MaxRecipients <= 0 {
		cfg.MaxRecipients = 1000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Server{auth: auth, cfg: cfg}
}

// Serve serves SMTP on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, ctx: ctx}, nil
	}))
	srv.Domain = "localhost"
	srv.TLSConfig = s.cfg.TLS
	srv.MaxMessageBytes = MaxMessageSize
	srv.MaxRecipients = s.cfg.MaxRecipients
	srv.MaxLineLength = MaxLineLength
	srv.ReadTimeout = 10 * time.Minute
	srv.WriteTimeout = time.Minute
	// Loopback only: mail clients commonly log in without TLS here.
	srv.AllowInsecureAuth = true
	srv.EnableSMTPUTF8 = true
	srv.EnableBINARYMIME = true
	srv.ErrorLog = errorLog{s.cfg.Logger}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	err := srv.Serve(ln)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

type session struct {
	s     *Server
	ctx   context.Context
	acct  Account
	from  string
	rcpts []string
}

func smtpErr(code int, enh smtp.EnhancedCode, msg string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg}
}

var errAuthRequired = smtpErr(530, smtp.EnhancedCode{5, 7, 0}, "Authentication required: log in with your address and the local token (bitmaskctl mail config)")

// What a command whose handling panicked answers. The message of a DATA
// that panicked is refused for good (the same message would fail the
// same way); the session goes on.
var (
	errBrokenMessage = smtpErr(554, smtp.EnhancedCode{5, 3, 0}, "bitmaskd could not process this message: internal error")
	errBroken        = smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "Internal error, try again (see the bitmaskd log)")
	errBrokenAuth    = smtpErr(454, smtp.EnhancedCode{4, 7, 0}, "Temporary authentication failure (see the bitmaskd log)")
)

// guard, deferred by a command's handler, turns a panic in it into the
// answer given (the panic is logged without its content): the session
// and the server go on. What go-smtp recovers itself (outside these
// handlers) answers 421 and closes that connection only (errorLog).
func (se *session) guard(errp *error, answer *smtp.SMTPError) {
	if v := recover(); v != nil {
		p := recovered.New(v)
		se.s.cfg.Logger.Error("smtpd: a command panicked; answered "+strconv.Itoa(answer.Code), p.LogAttrs()...)
		*errp = answer
	}
}

// errorLog passes go-smtp's log lines to slog: the panics it recovers
// as errors, without the panic's text; the rest at debug level.
type errorLog struct{ log *slog.Logger }

func (l errorLog) Printf(format string, v ...any) {
	if strings.HasPrefix(format, "panic serving") && len(v) == 3 {
		stack, _ := v[2].([]byte)
		l.log.Error("smtpd: a session panicked; closed it", "panic", recovered.Describe(v[1]), "stack", string(stack))
		return
	}
	l.log.Debug("smtpd: " + strings.TrimRight(fmt.Sprintf(format, v...), "\n"))
}

func (l errorLog) Println(v ...any) {
	l.log.Debug("smtpd: " + strings.TrimRight(fmt.Sprintln(v...), "\n"))
}

func (se *session) AuthMechanisms() []string { return []string{sasl.Plain, sasl.Login} }

func (se *session) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) (err error) {
		defer se.guard(&err, errBrokenAuth)
		a, err := se.s.auth.CheckSMTP(se.ctx, user, pass)
		if err != nil {
			return smtpErr(535, smtp.EnhancedCode{5, 7, 8}, "Wrong address or local token")
		}
		se.acct = a
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, pass string) error {
			if identity != "" && identity != user {
				return smtpErr(535, smtp.EnhancedCode{5, 7, 8}, "Identities differ")
			}
			return check(user, pass)
		}), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (se *session) Reset() { se.from, se.rcpts = "", nil }

func (se *session) Logout() error { return nil }

func (se *session) Mail(from string, opts *smtp.MailOptions) (err error) {
	defer se.guard(&err, errBroken)
	if se.acct == nil {
		return errAuthRequired
	}
	if !strings.EqualFold(from, se.acct.Address()) {
		return smtpErr(553, smtp.EnhancedCode{5, 7, 1}, fmt.Sprintf("Sender address must be %s", se.acct.Address()))
	}
	se.from = se.acct.Address()
	return nil
}

func (se *session) Rcpt(to string, opts *smtp.RcptOptions) (err error) {
	defer se.guard(&err, errBroken)
	if se.acct == nil {
		return errAuthRequired
	}
	a, err := mail.ParseAddress("<" + to + ">")
	if err != nil || !strings.Contains(a.Address, "@") {
		return smtpErr(501, smtp.EnhancedCode{5, 1, 3}, "Bad recipient address syntax")
	}
	se.rcpts = append(se.rcpts, a.Address)
	return nil
}

func (se *session) Data(r io.Reader) (err error) {
	defer se.guard(&err, errBrokenMessage)
	if se.acct == nil {
		return errAuthRequired
	}
	if se.from == "" || len(se.rcpts) == 0 {
		return smtpErr(503, smtp.EnhancedCode{5, 5, 1}, "Need MAIL and RCPT first")
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		if errors.Is(err, smtp.ErrDataTooLarge) {
			return smtpErr(552, smtp.EnhancedCode{5, 3, 4}, "Message too big")
		}
		if errors.Is(err, smtp.ErrTooLongLine) {
			// go-smtp then closes the connection, whose input it can no
			// longer follow.
			return smtpErr(500, smtp.EnhancedCode{5, 4, 0}, "Line too long: at most 1 MiB a line")
		}
		return err
	}
	if err := checkFrom(raw, se.acct.Address()); err != nil {
		return err
	}
	if err := se.acct.Enqueue(se.from, se.rcpts, raw); err != nil {
		se.s.cfg.Logger.Error("smtpd: outbox", "err", err)
		return smtpErr(451, smtp.EnhancedCode{4, 3, 0}, "Could not queue the message, try again")
	}
	return nil
}

// checkFrom requires one From header field holding one address, the
// account's: the message is signed with the account's key, and a second
// From field or address would let a mail client show another sender.
// (The provider's submission service refuses the same messages; taking
// them here would only turn them into bounces later.)
func checkFrom(raw []byte, address string) error {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return smtpErr(550, smtp.EnhancedCode{5, 6, 0}, "Message header does not parse: "+err.Error())
	}
	if n := len(m.Header["From"]); n > 1 {
		return smtpErr(553, smtp.EnhancedCode{5, 7, 1}, fmt.Sprintf("The message has %d From header fields; it needs one, with %s", n, address))
	}
	froms, err := m.Header.AddressList("From")
	if err != nil || len(froms) == 0 {
		return smtpErr(553, smtp.EnhancedCode{5, 7, 1}, "The message needs a From header with "+address)
	}
	if len(froms) > 1 {
		return smtpErr(553, smtp.EnhancedCode{5, 7, 1}, "The From header must hold one address, "+address)
	}
	if !strings.EqualFold(froms[0].Address, address) {
		return smtpErr(553, smtp.EnhancedCode{5, 7, 1}, fmt.Sprintf("From must be %s, not %s", address, froms[0].Address))
	}
	return nil
}

// loginServer is the LOGIN SASL mechanism (draft-murchison-sasl-login):
// "Username:" then "Password:".
type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step = 1
		if len(response) > 0 { // initial response carries the user name
			l.user = string(response)
			l.step = 2
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.user = string(response)
		l.step = 2
		return []byte("Password:"), false, nil
	case 2:
		l.step = 3
		return nil, true, l.check(l.user, string(response))
	}
	return nil, true, errors.New("unexpected response")
}
