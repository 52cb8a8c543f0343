package providerclient

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

type sseEvent struct {
	name string
	data []byte
}

func (e sseEvent) String() string { return fmt.Sprintf("%s:%q", e.name, e.data) }

// refSSE is an independent reading of the event stream format (WHATWG
// HTML, "Interpreting an event stream"), with lines ended by LF or CRLF as
// readSSE's scanner splits them. It also reports the longest raw line and
// whether a data field had an empty value (see
// TestReadSSEEmptyDataLines).
func refSSE(in []byte) (events []sseEvent, longest int, emptyData bool) {
	lines := bytes.Split(in, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1] // the input ended with a newline
	}
	name, data, have := "", []byte(nil), false
	for _, l := range lines {
		longest = max(longest, len(l))
		l = bytes.TrimSuffix(l, []byte("\r"))
		if len(l) == 0 {
			// Dispatch: only if the data buffer is not empty, that is
			// if there was a data field.
			if have {
				if name == "" {
					name = "message"
				}
				events = append(events, sseEvent{name, data})
			}
			name, data, have = "", nil, false
			continue
		}
		if l[0] == ':' {
			continue
		}
		field, value := l, []byte{}
		if i := bytes.IndexByte(l, ':'); i >= 0 {
			field, value = l[:i], l[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "event":
			name = string(value)
		case "data":
			if have {
				data = append(data, '\n')
			}
			data = append(data, value...)
			if data == nil {
				data = []byte{}
			}
			emptyData = emptyData || len(value) == 0
			have = true
		}
	}
	return events, longest, emptyData
}

func sameEvents(a, b []sseEvent) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].name != b[i].name || !bytes.Equal(a[i].data, b[i].data) {
			return false
		}
	}
	return true
}

// FuzzReadSSE: readSSE never panics, always ends with an error (the stream
// ending is one), and calls fn with exactly the events of the input, in
// order: no event the input does not hold, none twice, no data from
// another event. Data handed to fn must stay valid (it is kept here
// without copying).
func FuzzReadSSE(f *testing.F) {
	f.Add([]byte("event: change\ndata: {\"seq\":1}\n\n"))
	f.Add([]byte(": keepalive\n\nevent: change\ndata: {\"seq\":2}\n\n: keepalive\n\n"))
	// Lines near the 64 KiB cap are left to TestReadSSE: big seeds make
	// the fuzzer's minimization crawl.
	f.Fuzz(func(t *testing.T, in []byte) {
		var got []sseEvent
		err := readSSE(bytes.NewReader(in), func(name string, data []byte) {
			got = append(got, sseEvent{name, data})
		})
		if err == nil {
			t.Fatal("readSSE returned nil at the end of the stream")
		}
		want, longest, _ := refSSE(in)
		// bufio.Scanner's 64 KiB cap: a line near it may end the stream
		// early, with the events before it delivered.
		long := longest >= 60<<10
		if !long && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("readSSE: %v, want io.ErrUnexpectedEOF", err)
		}
		if long {
			if len(got) > len(want) || !sameEvents(got, want[:len(got)]) {
				t.Fatalf("events %v are not a prefix of the input's %v", got, want)
			}
			return
		}
		if !sameEvents(got, want) {
			t.Fatalf("events %v, want %v", got, want)
		}
	})
}

func TestReadSSE(t *testing.T) {
	// What leapd sends.
	in := ": hello\n\nevent: change\ndata: {\"seq\":7}\n\n: keepalive\n\nevent: change\r\ndata: {\"seq\":8}\r\n\r\ndata: a\ndata:b\n\nevent: change\ndata: cut off"
	var got []sseEvent
	err := readSSE(strings.NewReader(in), func(name string, data []byte) { got = append(got, sseEvent{name, data}) })
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("end of stream: %v", err)
	}
	if fmt.Sprint(got) != `[change:"{\"seq\":7}" change:"{\"seq\":8}" message:"a\nb"]` {
		t.Errorf("events: %v", got)
	}
	// A line over the cap ends the stream with an error, after the
	// events before it.
	got = nil
	in = "event: change\ndata: 1\n\ndata: " + strings.Repeat("x", 65<<10) + "\n\nevent: change\ndata: 2\n\n"
	err = readSSE(strings.NewReader(in), func(name string, data []byte) { got = append(got, sseEvent{name, data}) })
	if err == nil || errors.Is(err, io.ErrUnexpectedEOF) || fmt.Sprint(got) != `[change:"1"]` {
		t.Errorf("over-long line: %v, events %v", err, got)
	}
}

// TestReadSSEEmptyDataLines: in the event stream format a data field
// with an empty value still adds a line to the data buffer, so "data:"
// then "data: x" is the data "\nx", and "data:" alone dispatches an event
// with empty data.
func TestReadSSEEmptyDataLines(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"data:\ndata: x\n\n", `[message:"\nx"]`},
		{"data: x\ndata:\n\n", `[message:"x\n"]`},
		{"event: change\ndata:\n\n", `[change:""]`},
	} {
		var got []sseEvent
		_ = readSSE(strings.NewReader(c.in), func(name string, data []byte) { got = append(got, sseEvent{name, data}) })
		if fmt.Sprint(got) != c.want {
			t.Errorf("readSSE(%q): %v, want %s", c.in, got, c.want)
		}
	}
}
