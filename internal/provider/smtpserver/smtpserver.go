// Package smtpserver is the plumbing the provider's two SMTP servers,
// the MX (internal/provider/mx) and the submission service
// (internal/provider/submission), share around go-smtp: the serve loop
// (Serve: the go-smtp server's settings, STARTTLS or implicit TLS, the
// start and stop logs and the graceful shutdown), a listener that limits
// connections and tracks them for that shutdown, go-smtp's error log on
// slog (where its recovered panics go), the replies both give, reading
// receiving a message within a size limit and a memory budget (Spool), and the form in which both compare
// domain names (NormDomain). What either server does with a
// message (its go-smtp backend and sessions) stays in its own package.
package smtpserver

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"

	"github.com/emersion/go-smtp"
)

// Reply makes an SMTP reply.
func Reply(code int, enh smtp.EnhancedCode, msg string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: enh, Message: msg}
}

// Replies both servers give.
var (
	ErrShuttingDown = Reply(421, smtp.EnhancedCode{4, 3, 2}, "Service shutting down, try again later")
	ErrTooBig       = Reply(552, smtp.EnhancedCode{5, 3, 4}, "Message too big")
	ErrTempFail     = Reply(451, smtp.EnhancedCode{4, 3, 0}, "Temporary failure storing the message, try again later")
	// ErrLineTooLong answers a message with a line over the server's
	// MaxLineLength (go-smtp then closes the connection, whose input it
	// can no longer follow). Mail's own limit is 998 characters a line
	// (RFC 5322 §2.1.1); 1 MiB leaves room for what is sent anyway.
	ErrLineTooLong = Reply(500, smtp.EnhancedCode{5, 4, 0}, "Line too long: at most 1 MiB a line")
)

// NewID is a random message ID for the logs.
func NewID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ErrorLog takes go-smtp's internal errors (connection errors, a
// recovered panic with its stack) to log, as warnings prefixed with
// name (e.g. "mx: smtp server: ...").
func ErrorLog(log *slog.Logger, name string) smtp.Logger {
	return errorLog{log: log, name: name}
}

type errorLog struct {
	log  *slog.Logger
	name string
}

func (e errorLog) Printf(format string, v ...any) {
	e.log.Warn(e.name + ": smtp server: " + strings.TrimSpace(fmt.Sprintf(format, v...)))
}

func (e errorLog) Println(v ...any) {
	e.log.Warn(e.name + ": smtp server: " + strings.TrimSpace(fmt.Sprintln(v...)))
}
