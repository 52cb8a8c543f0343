package imapproto

// OWNED BY the parse helper: everything in parse*.go. The signatures
// below are the contract with conn.go; keep them.

import (
	"bufio"
	"errors"
)

// Limits bound what the Decoder accepts.
type Limits struct {
	MaxLine        int   // bytes of one command outside its literals
	MaxLiteral     int64 // a literal anywhere but an APPEND message
	MaxAppend      int64 // one APPEND message (APPENDLIMIT)
	MaxAppendTotal int64 // all the messages of one MULTIAPPEND
}

// ParseError is a command that could not be read: unknown, malformed,
// or over a limit. The Decoder has consumed the rest of the command
// (its literals too, never asking for a synchronizing one), so the
// connection can go on with "Tag BAD Text" (Tag "*" when even the tag
// was unreadable).
type ParseError struct {
	Tag  string
	Text string
}

func (e *ParseError) Error() string { return "imapproto: " + e.Text }

// errNotWritten marks stubs. Removed when the parser lands.
var errNotWritten = errors.New("imapproto: parser not written yet")

// Decoder reads commands from a connection.
type Decoder struct {
	r    *bufio.Reader
	lim  Limits
	cont func() error
	utf8 bool
}

// NewDecoder reads commands from r. cont is called before the bytes of
// each synchronizing literal the Decoder accepts: it must send the
// continuation request ("+ Ready") and flush. A synchronizing literal
// over its limit is refused without calling cont: ReadCommand returns a
// ParseError, except for an APPEND message over MaxAppend, which gives
// AppendArgs.TooBig (the command ends there: the client, refused, sends
// nothing more of it). A non-synchronizing literal (LITERAL+) over its
// limit is read and discarded to the end of the command, then the same.
func NewDecoder(r *bufio.Reader, lim Limits, cont func() error) *Decoder {
	return &Decoder{r: r, lim: lim, cont: cont}
}

// SetUTF8 says whether UTF8=ACCEPT is enabled: mailbox names are then
// UTF-8, else modified UTF-7 (RFC 3501 §5.1.3) decoded to UTF-8.
func (d *Decoder) SetUTF8(on bool) { d.utf8 = on }

// ReadCommand reads one command with its literals. Errors: *ParseError
// (answer BAD and go on), or the connection's read error (io.EOF,
// timeouts, ...: end the connection).
func (d *Decoder) ReadCommand() (*Command, error) { return nil, errNotWritten }

// ReadLine reads one line without its CRLF, at most Limits.MaxLine
// bytes (AUTHENTICATE's continuations, IDLE's DONE).
func (d *Decoder) ReadLine() (string, error) { return "", errNotWritten }
