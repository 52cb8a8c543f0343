package submission

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"
)

// The relay's SMTP client: just what delivery to an MX needs (RFC 5321
// with STARTTLS, RFC 3207), written out so that every step is under the
// relay's control: the EHLO name, whether and how STARTTLS happens and
// what its failure means, timeouts per command (RFC 5321 §4.5.3.2), and
// bounded replies from servers we do not trust.

// Timeouts (RFC 5321 §4.5.3.2 suggests 5 minutes for most commands and
// 10 for the reply to the end of data).
const (
	cmdTimeout  = 5 * time.Minute
	dataTimeout = 10 * time.Minute
	maxReplyLen = 4096 // per line
	maxReplyLns = 100
)

// reply is a server's reply.
type reply struct {
	code   int
	status string // enhanced status code (RFC 3463), "" when none
	text   string // the lines' text, without codes, joined by "; "
	lines  []string
}

func (r *reply) String() string {
	s := strconv.Itoa(r.code)
	if r.status != "" {
		s += " " + r.status
	}
	if r.text != "" {
		s += " " + r.text
	}
	return s
}

type smtpConn struct {
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	ext  map[string]string // EHLO keywords, upper case
}

func newSMTPConn(c net.Conn) *smtpConn {
	return &smtpConn{conn: c, br: bufio.NewReader(c), bw: bufio.NewWriter(c)}
}

// setConn swaps the connection (after the TLS handshake).
func (c *smtpConn) setConn(nc net.Conn) {
	c.conn, c.br, c.bw = nc, bufio.NewReader(nc), bufio.NewWriter(nc)
	c.ext = nil
}

// readReply reads one reply, multi-line or not.
func (c *smtpConn) readReply(timeout time.Duration) (*reply, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	r := &reply{}
	for i := 0; ; i++ {
		if i >= maxReplyLns {
			return nil, errors.New("reply with too many lines")
		}
		line, err := c.readLine()
		if err != nil {
			return nil, err
		}
		if len(line) < 3 || (len(line) > 3 && line[3] != ' ' && line[3] != '-') {
			return nil, fmt.Errorf("malformed reply line %q", printable(line, 80))
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil || code < 200 || code > 599 {
			return nil, fmt.Errorf("malformed reply code %q", printable(line, 80))
		}
		if i > 0 && code != r.code {
			return nil, errors.New("reply lines with different codes")
		}
		r.code = code
		text := ""
		if len(line) > 4 {
			text = line[4:]
		}
		r.lines = append(r.lines, text)
		if len(line) == 3 || line[3] == ' ' {
			break
		}
	}
	// The enhanced status code leads each line (RFC 2034 §4); take
	// the first line's when its class matches the reply's.
	var texts []string
	for i, l := range r.lines {
		if st, rest, ok := strings.Cut(l, " "); ok || isStatus(l) {
			if !ok {
				st, rest = l, ""
			}
			if isStatus(st) && st[0] == byte('0'+r.code/100) {
				if i == 0 {
					r.status = st
				}
				l = rest
			}
		}
		if l = strings.TrimSpace(l); l != "" {
			texts = append(texts, l)
		}
	}
	r.text = printable(strings.Join(texts, "; "), 512)
	return r, nil
}

// isStatus reports whether s looks like an enhanced status code:
// class.subject.detail (RFC 3463 §2).
func isStatus(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || (parts[0] != "2" && parts[0] != "4" && parts[0] != "5") {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) == 0 || len(p) > 3 {
			return false
		}
		if _, err := strconv.Atoi(p); err != nil {
			return false
		}
	}
	return true
}

func (c *smtpConn) readLine() (string, error) {
	var b []byte
	for {
		chunk, isPrefix, err := c.br.ReadLine()
		if err != nil {
			return "", err
		}
		b = append(b, chunk...)
		if len(b) > maxReplyLen {
			return "", errors.New("reply line too long")
		}
		if !isPrefix {
			return string(b), nil
		}
	}
}

// cmd sends a command line and reads the reply.
func (c *smtpConn) cmd(timeout time.Duration, format string, args ...any) (*reply, error) {
	line := fmt.Sprintf(format, args...)
	if strings.ContainsAny(line, "\r\n") {
		return nil, errors.New("command contains a line break")
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.bw.WriteString(line + "\r\n"); err != nil {
		return nil, err
	}
	if err := c.bw.Flush(); err != nil {
		return nil, err
	}
	return c.readReply(timeout)
}

// hello says EHLO, and HELO when the server does not know EHLO (only
// when helo is allowed: without EHLO there is no STARTTLS).
func (c *smtpConn) hello(name string, helo bool) (*reply, error) {
	r, err := c.cmd(cmdTimeout, "EHLO %s", name)
	if err != nil {
		return nil, err
	}
	if r.code == 250 {
		c.ext = map[string]string{}
		for _, l := range r.lines[1:] {
			k, v, _ := strings.Cut(l, " ")
			c.ext[strings.ToUpper(k)] = v
		}
		return r, nil
	}
	if !helo || r.code < 500 {
		return r, nil
	}
	r, err = c.cmd(cmdTimeout, "HELO %s", name)
	if err == nil && r.code == 250 {
		c.ext = map[string]string{}
	}
	return r, err
}

func (c *smtpConn) has(ext string) bool {
	_, ok := c.ext[ext]
	return ok
}

// data sends the message after a 354, dot-stuffed, with the final
// CRLF.CRLF, and reads the reply.
func (c *smtpConn) data(parts ...[]byte) (*reply, error) {
	_ = c.conn.SetWriteDeadline(time.Now().Add(dataTimeout))
	w := textproto.NewWriter(c.bw).DotWriter()
	for _, p := range parts {
		if _, err := io.Copy(w, bytes.NewReader(p)); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil { // writes the ".", flushes
		return nil, err
	}
	return c.readReply(dataTimeout)
}

func (c *smtpConn) quit() {
	_, _ = c.cmd(10*time.Second, "QUIT")
}
