package rawmime

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParse parses any input with both delimiter rules and checks that
// the tree is made of the input's bytes: nothing panics, every range lies
// inside its parent's body in order (an encapsulated message covers its
// parent's body exactly), the fields of every header section are its
// lines up to the empty line, and writing the tree back from its ranges
// gives the input byte for byte.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"\r\n",
		"Subject: hi\r\n\r\nbody\r\n",
		"Subject: hi\n folded\n\nbody\n",
		"no header at all",
		" orphan continuation\r\nA: 1\r\n\r\n",
		"Content-Type: multipart/mixed; boundary=b\r\n\r\npre\r\n--b\r\nA: 1\r\n\r\none\r\n--b \t\r\n\r\ntwo\r\n--b--\r\nepi",
		"Content-Type: multipart/mixed; boundary=b\n\n--b\n--b\n--b--",
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b--\r\n--b\r\nafter close\r\n",
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nno close \r \r\n--b \r \r\nX",
		"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\n\r\nx\r\n--i--\r\n--o--\r\n",
		"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n",
		"Content-Type: message/rfc822\r\n\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n",
		"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: in\r\n\r\nx\r\n--d\r\nContent-Type: text/plain\r\n\r\ny\r\n--d--\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, pad := range []Padding{StrictPadding, LoosePadding} {
			e := Parse(in, &Options{Padding: pad})
			if e.Start != 0 || e.End != len(in) {
				t.Fatalf("root covers %d-%d of %d bytes", e.Start, e.End, len(in))
			}
			checkEntity(t, e, in)
			var out bytes.Buffer
			reassemble(&out, e, in)
			if !bytes.Equal(out.Bytes(), in) {
				t.Fatalf("padding %d: reassembled\n%q\nfrom\n%q", pad, out.Bytes(), in)
			}
		}
	})
}

// checkEntity checks the ranges of e and its parts, and its header
// section's fields.
func checkEntity(t *testing.T, e *Entity, in []byte) {
	t.Helper()
	if e.Start > e.BodyStart || e.BodyStart > e.End || e.End > len(in) {
		t.Fatalf("entity ranges %d %d %d", e.Start, e.BodyStart, e.End)
	}
	hdr := in[e.Start:e.BodyStart]
	fields, blank, _ := SplitHeader(in[e.Start:e.End])
	pos := 0
	for f := range Fields(hdr) {
		if f.Start != pos || !bytes.Equal(hdr[f.Start:f.Start+len(f.Raw)], f.Raw) {
			t.Fatalf("field at %d, expected %d", f.Start, pos)
		}
		if strings.ContainsAny(f.Value(), "\r\n") {
			t.Fatalf("value with a line break: %q", f.Value())
		}
		if n := f.Name(); n != "" && string(f.LooseName()) != n {
			t.Fatalf("strict name %q, loose %q", n, f.LooseName())
		}
		pos += len(f.Raw)
	}
	if pos != len(fields) || len(fields)+len(blank) != len(hdr) {
		t.Fatalf("fields cover %d of %d bytes (header section %d)", pos, len(fields), len(hdr))
	}
	if e.Message != nil {
		if e.Multipart != nil || e.Message.Start != e.BodyStart || e.Message.End != e.End || e.Message.DigestPart {
			t.Fatalf("message %d-%d in body %d-%d", e.Message.Start, e.Message.End, e.BodyStart, e.End)
		}
		checkEntity(t, e.Message, in)
	}
	if e.Multipart == nil {
		if e.Parts != nil {
			t.Fatal("parts without a multipart body")
		}
		return
	}
	body := in[e.BodyStart:e.End]
	last := 0
	for i, p := range e.Multipart.Parts {
		if p.Delim < last || p.Delim >= p.Start || p.Start > p.End || p.End > len(body) {
			t.Fatalf("part %d: %+v after %d in %d bytes", i, p, last, len(body))
		}
		last = p.End
		if i < len(e.Parts) {
			c := e.Parts[i]
			if c.Start != e.BodyStart+p.Start || c.End != e.BodyStart+p.End || c.DigestPart != e.Content.Digest {
				t.Fatalf("part %d entity %d-%d, split %+v", i, c.Start, c.End, p)
			}
			checkEntity(t, c, in)
		}
	}
	if e.Multipart.Close < last || e.Multipart.Close > len(body) {
		t.Fatalf("close delimiter at %d, last part ends at %d", e.Multipart.Close, last)
	}
}

// reassemble writes e back from its ranges of in: the header section,
// then for a multipart the bytes around and between its parts, each part
// written by its own entity, and for a message the message.
func reassemble(w *bytes.Buffer, e *Entity, in []byte) {
	if e.Message != nil {
		w.Write(in[e.Start:e.BodyStart])
		reassemble(w, e.Message, in)
		return
	}
	if e.Multipart == nil {
		w.Write(in[e.Start:e.End])
		return
	}
	w.Write(in[e.Start:e.BodyStart])
	body := in[e.BodyStart:e.End]
	pos := 0
	for i, p := range e.Multipart.Parts {
		if i >= len(e.Parts) {
			break
		}
		w.Write(body[pos:p.Start])
		reassemble(w, e.Parts[i], in)
		pos = p.End
	}
	w.Write(body[pos:])
}
