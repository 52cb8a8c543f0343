package smtpserver

import "strings"

// Printable makes s safe to put in a header field, an SMTP reply or a
// status report that we write: tabs and line breaks become spaces, other
// control bytes and every non-ASCII byte become '?', the result is cut at
// max bytes and trimmed. Text that comes from the network (a peer's
// reply, a HELO name, an error naming what a client sent) goes through it
// before it reaches a message or a log line.
func Printable(s string, max int) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < max; i++ {
		c := s[i]
		switch {
		case c == '\r' || c == '\n' || c == '\t':
			b.WriteByte(' ')
		case c < ' ' || c >= 0x7f:
			b.WriteByte('?')
		default:
			b.WriteByte(c)
		}
	}
	return strings.TrimSpace(b.String())
}
