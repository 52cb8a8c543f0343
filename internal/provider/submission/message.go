package submission

import (
	"bytes"
	"strings"

	"github.com/bitmask-go/bitmask/internal/provider/smtpserver"
	"github.com/bitmask-go/bitmask/pkg/rawmime"
)

// hfield is a header field: its name and unfolded value.
type hfield struct {
	name, value string
}

// headerSection is msg's header section up to, not including, the empty
// line that ends it (all of msg when there is none). A message that does
// not start with a header field has an empty header section.
func headerSection(msg []byte) []byte {
	pos := 0
	for pos < len(msg) {
		line := msg[pos:]
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line = line[:i+1]
		}
		if string(line) == "\n" || string(line) == "\r\n" {
			break
		}
		if pos == 0 && rawmime.FieldName(line) == "" {
			return nil
		}
		pos += len(line)
	}
	return msg[:pos]
}

// headerFields are the fields of msg's header section.
func headerFields(msg []byte) []hfield {
	var out []hfield
	for _, line := range bytes.SplitAfter(headerSection(msg), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && len(out) > 0 {
			out[len(out)-1].value += " " + strings.TrimSpace(string(line))
			continue
		}
		name := rawmime.FieldName(line)
		if name == "" {
			continue
		}
		_, v, _ := strings.Cut(string(line), ":")
		out = append(out, hfield{name: name, value: strings.TrimSpace(v)})
	}
	return out
}

// printable is smtpserver.Printable: what a peer or a client wrote, safe
// to put in a header field or a status report.
func printable(s string, max int) string { return smtpserver.Printable(s, max) }
