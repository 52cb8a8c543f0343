package mailtext

import (
	"bytes"
	"testing"
)

var samples = []string{
	"Subject: =?iso-8859-1?q?caf=E9?=\r\n\r\nHello World\r\n",
	"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=latin1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nna=EFve\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--b\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nPEI+Qm9sZDwvQj4=\r\n--b--\r\n",
	"no header at all",
	"",
	"Content-Type: text/plain; charset=windows-1252\r\n\r\n\x93quoted\x94 \x80\r\n",
}

// TestPieces: the pieces are the text Append makes, with and without the
// header values.
func TestPieces(t *testing.T) {
	for _, raw := range samples {
		var all, body bytes.Buffer
		Pieces([]byte(raw), func(header bool, text []byte) {
			all.Write(text)
			all.WriteByte('\n')
			if !header {
				body.Write(text)
				body.WriteByte('\n')
			}
		})
		for _, c := range []struct {
			headers bool
			got     []byte
		}{{true, all.Bytes()}, {false, body.Bytes()}} {
			var want bytes.Buffer
			Append(&want, []byte(raw), c.headers)
			if !bytes.Equal(c.got, want.Bytes()) {
				t.Errorf("%q headers=%v: pieces %q, Append %q", raw, c.headers, c.got, want.Bytes())
			}
		}
	}
}

func TestText(t *testing.T) {
	var buf bytes.Buffer
	got := string(Text(&buf, []byte(samples[1]), true))
	for _, want := range []string{"naïve", "inner body", "<b>bold</b>", "subject: inner"[9:]} {
		if !bytes.Contains([]byte(got), []byte(want)) {
			t.Errorf("text %q lacks %q", got, want)
		}
	}
	if got := string(Text(&buf, []byte(samples[4]), false)); got != "“quoted” €\r\n\n" {
		t.Errorf("cp1252: %q", got)
	}
	if got := string(Text(&buf, []byte(samples[0]), true)); got != "café\nhello world\r\n\n" {
		t.Errorf("encoded word: %q", got)
	}
}
