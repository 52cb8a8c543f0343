package imapproto

// OWNED BY the parse helper: everything in parse*.go. The signatures
// below are the contract with conn.go; keep them.
//
// How a command is read: the Decoder reads the command one line at a
// time (a line ends with CRLF; a lone LF is taken as CRLF too, as
// Dovecot does), and parses the line in memory. A line that ends with a
// literal header ({n}, {n+}, ~{n}, ~{n+}) goes on after the literal's
// bytes: the parser, when it reaches the header, checks the size
// against the limit, asks for a synchronizing literal (cont), reads the
// bytes in chunks as they arrive (never allocating from the declared
// size alone) and reads the next line. After an error, the rest of the
// command is discarded: the non-synchronizing literals its lines announce
// are read and dropped; a synchronizing one ends the command, since the
// client sends nothing more of it until it gets "+".
//
// Empty lines between commands are skipped.

import (
	"bufio"
	"errors"
	"io"
)

// Limits bound what the Decoder accepts. A zero field takes its
// default (DefaultMaxLine, ...).
type Limits struct {
	MaxLine        int   // bytes of one command outside its literals
	MaxLiteral     int64 // the literals of one command but its APPEND messages, together
	MaxAppend      int64 // one APPEND message (APPENDLIMIT)
	MaxAppendTotal int64 // all the messages of one MULTIAPPEND
}

// The defaults of a zero Limits field.
const (
	DefaultMaxLine        = 64 << 10
	DefaultMaxLiteral     = 64 << 10
	DefaultMaxAppend      = 64 << 20
	DefaultMaxAppendTotal = 256 << 20
)

// ParseError is a command that could not be read: unknown, malformed,
// or over a limit. Text may quote a little of the command (never of
// LOGIN's or AUTHENTICATE's): it is for the client, not for logs. The Decoder has consumed the rest of the command
// (its literals too, never asking for a synchronizing one), so the
// connection can go on with "Tag BAD Text" (Tag "*" when even the tag
// was unreadable).
type ParseError struct {
	Tag  string
	Text string
}

func (e *ParseError) Error() string { return "imapproto: " + e.Text }

// Decoder reads commands from a connection.
type Decoder struct {
	r    *bufio.Reader
	lim  Limits
	cont func() error
	utf8 bool

	line  []byte // the line being parsed, without its line end
	pos   int    // parse position in line
	n     int    // bytes of the current command outside literals so far
	over  bool   // the line was longer than the limit: line holds its start only
	tail  []byte // the last bytes of an over-long line (for its literal header)
	depth int    // nesting of SEARCH keys
	lits  int64  // bytes of the command's literals so far (not APPEND messages)
	// preAuth holds every literal, APPEND messages too, to
	// preAuthMaxLiteral: before login a client needs only short
	// strings, and anyone who can connect is a client then.
	preAuth bool
	quiet   bool // the command carries a password: error texts quote none of it
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
	if lim.MaxLine <= 0 {
		lim.MaxLine = DefaultMaxLine
	}
	if lim.MaxLiteral <= 0 {
		lim.MaxLiteral = DefaultMaxLiteral
	}
	if lim.MaxAppend <= 0 {
		lim.MaxAppend = DefaultMaxAppend
	}
	if lim.MaxAppendTotal <= 0 {
		lim.MaxAppendTotal = DefaultMaxAppendTotal
	}
	return &Decoder{r: r, lim: lim, cont: cont}
}

// SetUTF8 says whether UTF8=ACCEPT is enabled: mailbox names are then
// UTF-8, else modified UTF-7 (RFC 3501 §5.1.3) decoded to UTF-8.
func (d *Decoder) SetUTF8(on bool) { d.utf8 = on }

// preAuthMaxLiteral bounds the literals of a command (APPEND messages
// included) read before the client has logged in (setPreAuth).
const preAuthMaxLiteral = 8 << 10

// setPreAuth says whether the client has yet to log in (see preAuth).
func (d *Decoder) setPreAuth(on bool) { d.preAuth = on }

// maxLiteral is the budget of a command's literals (not APPEND messages).
func (d *Decoder) maxLiteral() int64 {
	if d.preAuth {
		return min(d.lim.MaxLiteral, preAuthMaxLiteral)
	}
	return d.lim.MaxLiteral
}

// maxAppend is the limit of one APPEND message and of all of them.
func (d *Decoder) maxAppend() (one, total int64) {
	if d.preAuth {
		return min(d.lim.MaxAppend, preAuthMaxLiteral), min(d.lim.MaxAppendTotal, preAuthMaxLiteral)
	}
	return d.lim.MaxAppend, d.lim.MaxAppendTotal
}

// maxTail is how much of an over-long line is kept to find its literal
// header: "~{" 19 digits "+}".
const maxTail = 24

// readLine reads the next line of the command into d.line. An over-long
// line is read to its end and gives a *ParseError; d.line then holds its
// start and d.tail its end.
func (d *Decoder) readLine() error {
	d.line = d.line[:0]
	d.pos = 0
	d.over = false
	d.tail = d.tail[:0]
	room := d.lim.MaxLine - d.n
	got := 0
	for {
		chunk, err := d.r.ReadSlice('\n')
		got += len(chunk)
		if !d.over {
			// The line end is not counted: allow 2 bytes for it.
			if len(d.line)+len(chunk) > room+2 {
				// Keep the start (for the tag) and go on to the end.
				d.over = true
				d.tail = appendTail(d.tail, d.line)
				if k := room + 2 - len(d.line); k > 0 {
					d.line = append(d.line, chunk[:k]...)
				}
			} else {
				d.line = append(d.line, chunk...)
			}
		}
		if d.over {
			d.tail = appendTail(d.tail, chunk)
		}
		if err == nil {
			break
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && (got > 0 || d.n > 0) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if d.over {
		d.tail = trimEOL(d.tail)
		return &ParseError{Text: "command line too long"}
	}
	d.line = trimEOL(d.line)
	if len(d.line) > room {
		d.over = true
		d.tail = appendTail(d.tail, d.line)
		return &ParseError{Text: "command line too long"}
	}
	d.n += len(d.line)
	return nil
}

func appendTail(tail, b []byte) []byte {
	if len(b) >= maxTail {
		return append(tail[:0], b[len(b)-maxTail:]...)
	}
	tail = append(tail, b...)
	if len(tail) > maxTail {
		tail = append(tail[:0], tail[len(tail)-maxTail:]...)
	}
	return tail
}

func trimEOL(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == '\n' {
		b = b[:len(b)-1]
		if len(b) > 0 && b[len(b)-1] == '\r' {
			b = b[:len(b)-1]
		}
	}
	return b
}

// tailLiteral finds the literal header that ends line, if any.
func tailLiteral(line []byte) (n int64, nonSync, ok bool) {
	i := len(line) - 1
	if i < 0 || line[i] != '}' {
		return 0, false, false
	}
	i--
	if i >= 0 && line[i] == '+' {
		nonSync = true
		i--
	}
	end := i + 1
	for i >= 0 && line[i] >= '0' && line[i] <= '9' {
		i--
	}
	if i < 0 || line[i] != '{' || end-i-1 == 0 || end-i-1 > 19 {
		return 0, false, false
	}
	for _, c := range line[i+1 : end] {
		v := int64(c - '0')
		if n > (1<<63-1-v)/10 {
			return 0, false, false
		}
		n = n*10 + v
	}
	return n, nonSync, true
}

// discardRest reads and drops what is left of the command: the
// non-synchronizing literals its lines end with and the lines after
// them.
func (d *Decoder) discardRest() error {
	for {
		line := d.line
		if d.over {
			line = d.tail
		}
		n, nonSync, ok := tailLiteral(line)
		if !ok || !nonSync {
			return nil
		}
		if err := d.discard(n); err != nil {
			return err
		}
		// Lines after a discarded literal are not held to the limit:
		// the command is being dropped anyway.
		d.n = 0
		if err := d.readLine(); err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				return err
			}
		}
	}
}

func (d *Decoder) discard(n int64) error {
	for n > 0 {
		k := 1 << 20
		if n < int64(k) {
			k = int(n)
		}
		m, err := d.r.Discard(k)
		n -= int64(m)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// readN reads a literal's n bytes, growing its buffer as they arrive.
func (d *Decoder) readN(n int64) ([]byte, error) {
	const chunk = 64 << 10
	buf := make([]byte, 0, min(n, chunk))
	for int64(len(buf)) < n {
		want := int(min(n-int64(len(buf)), chunk))
		if cap(buf)-len(buf) < want {
			c := int64(max(2*cap(buf), len(buf)+want))
			nb := make([]byte, len(buf), min(c, n))
			copy(nb, buf)
			buf = nb
		}
		m, err := io.ReadFull(d.r, buf[len(buf):len(buf)+want])
		buf = buf[:len(buf)+m]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}

// ReadCommand reads one command with its literals. Errors: *ParseError
// (answer BAD and go on), or the connection's read error (io.EOF,
// timeouts, ...: end the connection).
func (d *Decoder) ReadCommand() (*Command, error) {
	for {
		d.n = 0
		d.depth = 0
		d.lits = 0
		err := d.readLine()
		if err != nil {
			var pe *ParseError
			if errors.As(err, &pe) {
				pe.Tag = d.lineTag()
				if err := d.discardRest(); err != nil {
					return nil, err
				}
			}
			return nil, err
		}
		if len(d.line) > 0 {
			break
		}
	}
	d.quiet = false
	tag, ok := d.readTag()
	if !ok {
		if err := d.discardRest(); err != nil {
			return nil, err
		}
		return nil, &ParseError{Tag: "*", Text: "no valid tag"}
	}
	cmd := &Command{Tag: tag}
	err := d.command(cmd)
	if err == nil {
		return cmd, nil
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		return nil, err
	}
	pe.Tag = tag
	if err := d.discardRest(); err != nil {
		return nil, err
	}
	return nil, pe
}

// lineTag is the tag of the line being read, "*" when it has none.
func (d *Decoder) lineTag() string {
	i := 0
	for i < len(d.line) && isTagChar(d.line[i]) {
		i++
	}
	if i == 0 || i >= len(d.line) || d.line[i] != ' ' {
		return "*"
	}
	return string(d.line[:i])
}

// ReadLine reads one line without its CRLF, at most Limits.MaxLine
// bytes (AUTHENTICATE's continuations, IDLE's DONE). A longer line is
// read to its end and gives a *ParseError (Tag "*").
func (d *Decoder) ReadLine() (string, error) {
	d.n = 0
	if err := d.readLine(); err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			pe.Tag = "*"
		}
		return "", err
	}
	return string(d.line), nil
}
