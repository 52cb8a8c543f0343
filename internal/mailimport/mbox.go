package mailimport

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"time"
)

// An mbox file is messages one after the other, each starting with a
// "From " line (the From_ line: the envelope sender and the time of
// delivery) and ending with an empty line. A line of a message that
// starts with "From " was written with a '>' before it; mboxrd also
// quotes lines that start with ">From ", ">>From " and so on, mboxo does
// not. The reader unquotes by mboxrd's rule (one '>' less before any
// run of '>' and "From "), which reads both, except that a line of an
// mboxo file that stood ">From " in the original loses its '>'.
//
// The reader never holds more than one message: a message over the size
// limit is read through to the next From_ line and reported, not kept.

// MboxMessage is one message of an mbox file.
type MboxMessage struct {
	// Raw is the message with CRLF line breaks, the quoting undone and
	// the empty line that ends it in the mbox removed; nil when TooBig.
	Raw []byte
	// Envelope is the From_ line after "From ", without its line break.
	Envelope string
	// Date is the time of the From_ line (UTC when it names no zone);
	// zero when it has none that reads.
	Date time.Time
	// Index is the message's number in the file, from 1.
	Index int
	// Offset is where its From_ line starts in the file; Size is its
	// length there, From_ line included.
	Offset, Size int64
	// Truncated says the file ends in the middle of the message's last
	// line: the file was probably cut short.
	Truncated bool
	// TooBig says the message is over the size limit and was not kept.
	TooBig bool
}

// ErrNotMbox is the error of a file that does not start with a From_
// line.
var ErrNotMbox = errors.New("not an mbox file: it does not start with a \"From \" line")

// MboxReader reads the messages of an mbox file one at a time.
type MboxReader struct {
	br     *bufio.Reader
	max    int64
	off    int64  // bytes read from the file
	next   []byte // the From_ line of the next message, read already
	nextAt int64  // its offset
	index  int
	eof    bool
	err    error
}

// mboxBuf is the reader's buffer: the longest piece of a line it looks
// at as a whole. A From_ line is recognised in a line's first piece.
const mboxBuf = 64 << 10

// NewMboxReader reads an mbox from r; messages over max bytes (as
// stored: CRLF line breaks) are reported TooBig and not kept. Empty
// lines before the first From_ line are skipped; any other first line
// is ErrNotMbox, at the first Next.
func NewMboxReader(r io.Reader, max int64) *MboxReader {
	return &MboxReader{br: bufio.NewReaderSize(r, mboxBuf), max: max}
}

// piece reads the next piece of a line: a whole line with its LF, or
// the first mboxBuf bytes of a longer one, or what is left of it. start
// says the piece starts a line. The slice is valid until the next call.
func (m *MboxReader) piece() ([]byte, error) {
	b, err := m.br.ReadSlice('\n')
	m.off += int64(len(b))
	if err == bufio.ErrBufferFull {
		err = nil
	}
	if err == io.EOF && len(b) > 0 {
		err = nil
	}
	return b, err
}

// Offset is how many bytes of the file the reader has read.
func (m *MboxReader) Offset() int64 { return m.off }

// Next returns the next message, or io.EOF after the last.
func (m *MboxReader) Next() (*MboxMessage, error) {
	if m.err != nil {
		return nil, m.err
	}
	if m.next == nil {
		if m.eof {
			return nil, io.EOF
		}
		if err := m.first(); err != nil {
			m.err = err
			return nil, err
		}
	}
	msg := &MboxMessage{Index: m.index + 1, Offset: m.nextAt}
	m.index++
	msg.Envelope, msg.Date = parseFromLine(m.next)
	m.next = nil
	var buf bytes.Buffer
	lineStart := true
	lastEOL := true // the last piece read ended a line
	for {
		at := m.off
		p, err := m.piece()
		if err == io.EOF {
			m.eof = true
			break
		}
		if err != nil {
			m.err = err
			return nil, err
		}
		if lineStart && isFromLine(p) {
			m.next = append(m.next[:0], p...)
			m.nextAt = at
			break
		}
		ends := p[len(p)-1] == '\n'
		if !msg.TooBig {
			if lineStart {
				p = unquote(p)
			}
			appendCRLF(&buf, p, ends)
			if int64(buf.Len()) > m.max+2 { // +2: the empty line that ends it in the mbox
				msg.TooBig = true
				buf = bytes.Buffer{}
			}
		}
		lineStart, lastEOL = ends, ends
	}
	if m.next != nil {
		msg.Size = m.nextAt - msg.Offset
	} else {
		msg.Size = m.off - msg.Offset
	}
	if !lastEOL {
		msg.Truncated = true
	}
	if msg.TooBig {
		return msg, nil
	}
	raw := buf.Bytes()
	// The empty line before the next From_ line (or at the end of the
	// file) is the mbox's, not the message's.
	if bytes.HasSuffix(raw, []byte("\r\n\r\n")) {
		raw = raw[:len(raw)-2]
	} else if len(raw) == 2 && string(raw) == "\r\n" {
		raw = raw[:0]
	}
	if int64(len(raw)) > m.max {
		msg.TooBig = true
		return msg, nil
	}
	msg.Raw = raw
	return msg, nil
}

// first reads up to the first From_ line.
func (m *MboxReader) first() error {
	for {
		at := m.off
		p, err := m.piece()
		if err == io.EOF {
			m.eof = true
			return io.EOF
		}
		if err != nil {
			return err
		}
		if isFromLine(p) {
			m.next = append(m.next[:0], p...)
			m.nextAt = at
			return nil
		}
		if len(bytes.TrimRight(p, "\r\n")) != 0 || p[len(p)-1] != '\n' {
			return ErrNotMbox
		}
	}
}

func isFromLine(p []byte) bool { return bytes.HasPrefix(p, []byte("From ")) }

// unquote removes one '>' from a line of '>'s then "From ".
func unquote(p []byte) []byte {
	if len(p) == 0 || p[0] != '>' {
		return p
	}
	i := 0
	for i < len(p) && p[i] == '>' {
		i++
	}
	if bytes.HasPrefix(p[i:], []byte("From ")) {
		return p[1:]
	}
	return p
}

// appendCRLF appends p to buf with its line break, if it ends a line,
// as CRLF: a bare LF gets a CR before it (the CR may be the last byte
// of buf, from the line's previous piece).
func appendCRLF(buf *bytes.Buffer, p []byte, ends bool) {
	if !ends {
		buf.Write(p)
		return
	}
	body := p[:len(p)-1]
	buf.Write(body)
	var prev byte
	if len(body) > 0 {
		prev = body[len(body)-1]
	} else if b := buf.Bytes(); len(b) > 0 {
		prev = b[len(b)-1]
	}
	if prev != '\r' {
		buf.WriteByte('\r')
	}
	buf.WriteByte('\n')
}

// fromLayouts are the ways a From_ line writes its time, after the
// sender, with runs of blanks made one: asctime, and with a zone after
// the year or before it.
var fromLayouts = []string{
	"Mon Jan 2 15:04:05 2006",
	"Mon Jan 2 15:04:05 2006 -0700",
	"Mon Jan 2 15:04:05 -0700 2006",
	"Mon Jan 2 15:04:05 MST 2006",
	"Mon Jan 2 15:04 2006",
}

// parseFromLine reads a From_ line: what follows "From " and its time.
func parseFromLine(line []byte) (string, time.Time) {
	env := strings.TrimRight(string(line[len("From "):]), "\r\n")
	f := strings.Fields(env)
	if len(f) < 2 {
		return env, time.Time{}
	}
	rest := strings.Join(f[1:], " ")
	for _, l := range fromLayouts {
		if t, err := time.Parse(l, rest); err == nil {
			return env, t
		}
	}
	return env, time.Time{}
}
