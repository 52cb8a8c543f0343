package providerclient

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// readSSE parses a server-sent events stream (the WHATWG HTML "event
// stream" format): lines "event: X" and "data: Y", a blank line ends an
// event, lines starting with ':' are comments. Lines are capped at 64 KiB.
func readSSE(r io.Reader, fn func(event string, data []byte)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	event, data, haveData := "", []byte(nil), false
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			if haveData {
				if event == "" {
					event = "message"
				}
				fn(event, data)
			}
			event, data, haveData = "", nil, false
		case line[0] == ':':
		default:
			field, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(field) {
			case "event":
				event = string(value)
			case "data":
				if haveData {
					data = append(data, '\n')
				}
				data = append(data, value...)
				haveData = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading the event stream: %w", err)
	}
	return fmt.Errorf("the event stream ended: %w", io.ErrUnexpectedEOF)
}
