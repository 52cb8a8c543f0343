package rawmime

import (
	"bytes"
	"strings"
	"testing"
)

func TestSplitHeader(t *testing.T) {
	for _, tc := range []struct{ in, fields, blank, body string }{
		{"A: 1\r\nB: 2\r\n\r\nbody\r\n", "A: 1\r\nB: 2\r\n", "\r\n", "body\r\n"},
		{"A: 1\nB: 2\n\nbody\n", "A: 1\nB: 2\n", "\n", "body\n"},
		{"\r\nbody", "", "\r\n", "body"},
		{"A: 1\r\nB: 2", "A: 1\r\nB: 2", "", ""},
		{"A: 1\r\n \r\nB: 2\r\n\r\n", "A: 1\r\n \r\nB: 2\r\n", "\r\n", ""}, // a blank continuation line is no empty line
		{"", "", "", ""},
	} {
		f, b, body := SplitHeader([]byte(tc.in))
		if string(f) != tc.fields || string(b) != tc.blank || string(body) != tc.body {
			t.Errorf("%q: %q %q %q", tc.in, f, b, body)
		}
		if (b == nil) != (tc.blank == "") {
			t.Errorf("%q: blank %v", tc.in, b)
		}
	}
}

func TestFields(t *testing.T) {
	hdr := []byte(" orphan\r\nSubject: a\r\n b\r\n\tc\r\nno colon\r\nX : y\nZ: last\r\n\r\nBody: no\r\n")
	type got struct {
		raw, name, loose, value string
		start                   int
	}
	var fs []got
	for f := range Fields(hdr) {
		fs = append(fs, got{string(f.Raw), f.Name(), string(f.LooseName()), f.Value(), f.Start})
	}
	want := []got{
		{" orphan\r\n", "", "", "", 0},
		{"Subject: a\r\n b\r\n\tc\r\n", "Subject", "Subject", "a b\tc", 9},
		{"no colon\r\n", "", "", "", 29},
		{"X : y\n", "X", "X", "y", 39},
		{"Z: last\r\n", "Z", "Z", "last", 45},
	}
	if len(fs) != len(want) {
		t.Fatalf("%d fields: %+v", len(fs), fs)
	}
	for i := range want {
		if fs[i] != want[i] {
			t.Errorf("field %d: %+v, want %+v", i, fs[i], want[i])
		}
	}
	// Loose names keep what the strict rule refuses.
	for f := range Fields([]byte("Two words: x\r\nX-\xff: y\r\n")) {
		if f.Name() != "" || len(f.LooseName()) == 0 {
			t.Errorf("%q: strict %q, loose %q", f.Raw, f.Name(), f.LooseName())
		}
	}
}

func TestFieldName(t *testing.T) {
	for in, want := range map[string]string{
		"From: a@b\r\n":   "From",
		"Subject : x\r\n": "Subject",
		" folded\r\n":     "",
		"no colon\r\n":    "",
		":empty\r\n":      "",
		"\r\n":            "",
	} {
		if got := FieldName([]byte(in)); got != want {
			t.Errorf("FieldName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEOL(t *testing.T) {
	for in, want := range map[string]string{"A: 1\r\n": "\r\n", "A: 1\n": "\n", "A: 1": "\r\n", "": "\r\n", "\n\r\n": "\n"} {
		if got := EOL([]byte(in)); got != want {
			t.Errorf("EOL(%q) = %q", in, got)
		}
	}
}

func TestSplitMultipart(t *testing.T) {
	cases := []struct {
		body   string
		want   []string // for both rules unless loose is set
		loose  []string
		closed bool
	}{
		{body: "pre\r\n--b\r\nA\r\n--b\r\nB\r\n--b--\r\nepilogue", want: []string{"A", "B"}, closed: true},
		{body: "--b\nA\n--b  \nB\n--b--", want: []string{"A", "B"}, closed: true}, // LF, transport padding
		{body: "--b\r\nA\r\n--bx\r\nstill A\r\n", want: []string{"A\r\n--bx\r\nstill A\r\n"}},
		{body: "--b\r\n--b--\r\n", want: []string{""}, closed: true},
		{body: "--b\r\n\r\n--b--\r\n", want: []string{""}, closed: true},
		{body: "--b--\r\n--b\r\nA\r\n", want: nil, closed: true}, // close before any part
		{body: "no delimiter", want: nil},
		{body: "--b\r\nA\r\n--b \r \r\nB\r\n--b--", want: []string{"A\r\n--b \r \r\nB"}, loose: []string{"A", "B"}, closed: true},
		{body: "--b\r\nA\r\n--b--\r\r\n", want: []string{"A"}, closed: true},
	}
	for _, tc := range cases {
		for _, pad := range []Padding{StrictPadding, LoosePadding} {
			want := tc.want
			if pad == LoosePadding && tc.loose != nil {
				want = tc.loose
			}
			m := SplitMultipart([]byte(tc.body), "b", pad)
			var got []string
			for _, p := range m.Parts {
				got = append(got, tc.body[p.Start:p.End])
				if !strings.HasPrefix(tc.body[p.Delim:], "--b") {
					t.Errorf("%q: part delimiter at %d", tc.body, p.Delim)
				}
			}
			if strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) || m.Closed != tc.closed {
				t.Errorf("%q (padding %d): %q closed %v, want %q closed %v", tc.body, pad, got, m.Closed, want, tc.closed)
			}
		}
	}
	if m := SplitMultipart([]byte("--\r\nA\r\n"), "", StrictPadding); len(m.Parts) != 0 {
		t.Errorf("empty boundary split: %+v", m)
	}
}

func TestDecodeBase64(t *testing.T) {
	if got, err := DecodeBase64([]byte("aGVsbG8\r\n!!")); string(got) != "hello" || err != nil {
		t.Errorf("lenient base64: %q %v", got, err)
	}
	if got, _ := DecodeBase64([]byte("aGVsbG8g=d")); string(got) != "hello " {
		t.Errorf("dangling character: %q", got)
	}
}

func TestParse(t *testing.T) {
	msg := []byte("Content-Type: multipart/mixed; boundary=o\r\n\r\npre\r\n--o\r\n" +
		"Content-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\n\r\nplain\r\n--i\r\nContent-Type: text/html\r\n\r\n<p>html\r\n--i--\r\n" +
		"\r\n--o\r\nContent-Type: text/plain\r\n\r\nsecond\r\n--o--\r\nepi\r\n")
	e := Parse(msg, nil)
	if len(e.Parts) != 2 || len(e.Parts[0].Parts) != 2 || e.Parts[1].Parts != nil {
		t.Fatalf("tree: %+v", e)
	}
	body := func(e *Entity) string { return string(msg[e.BodyStart:e.End]) }
	if got := body(e.Parts[0].Parts[1]); got != "<p>html" {
		t.Errorf("html part body %q", got)
	}
	if got := body(e.Parts[1]); got != "second" {
		t.Errorf("second part body %q", got)
	}
	var out bytes.Buffer
	reassemble(&out, e, msg)
	if !bytes.Equal(out.Bytes(), msg) {
		t.Errorf("reassembled:\n%q", out.Bytes())
	}
	// Limits: deeper entities are leaves.
	if e := Parse(msg, &Options{MaxDepth: 1}); len(e.Parts) != 2 || e.Parts[0].Parts != nil {
		t.Errorf("depth limit: %+v", e)
	}
	if e := Parse(msg, &Options{MaxParts: 2}); len(e.Parts) != 1 || e.Parts[0].Parts != nil {
		t.Errorf("part limit: %+v", e)
	}
}

func TestParseMessages(t *testing.T) {
	inner := "Content-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n\r\nx\r\n--i--\r\n"
	msg := []byte("Content-Type: multipart/digest; boundary=d\r\n\r\n" +
		"--d\r\n\r\nSubject: default type\r\n\r\none\r\n" +
		"--d\r\nContent-Type: text/plain\r\n\r\ntwo\r\n" +
		"--d\r\nContent-Type: message/rfc822\r\n\r\n" + inner + "--d--\r\n")
	e := Parse(msg, nil)
	if len(e.Parts) != 3 || !e.Content.Digest {
		t.Fatalf("digest: %+v", e)
	}
	for i, p := range e.Parts {
		if !p.DigestPart {
			t.Errorf("part %d not a digest part", i+1)
		}
	}
	if m := e.Parts[0].Message; m == nil || string(msg[m.Start:m.BodyStart]) != "Subject: default type\r\n\r\n" {
		t.Errorf("digest part without Content-Type: %+v", m)
	}
	if e.Parts[1].Message != nil {
		t.Errorf("text/plain digest part read as a message")
	}
	m := e.Parts[2].Message
	if m == nil || string(msg[m.Start:m.End]) != strings.TrimSuffix(inner, "\r\n") || len(m.Parts) != 1 || m.DigestPart {
		t.Fatalf("message/rfc822 part: %+v", m)
	}
	// A message counts as a level: at depth 2 it is a leaf.
	if e := Parse(msg, &Options{MaxDepth: 2}); e.Parts[2].Message == nil || e.Parts[2].Message.Parts != nil {
		t.Errorf("depth limit through a message: %+v", e.Parts[2].Message)
	}
	// A caller's own reading: no messages.
	leafs := func(h []byte, digestPart bool) Content {
		c := DefaultContent(h, digestPart)
		c.Message = false
		return c
	}
	if e := Parse(msg, &Options{Content: leafs}); e.Parts[0].Message != nil || e.Parts[2].Message != nil {
		t.Errorf("Options.Content ignored")
	}
}
