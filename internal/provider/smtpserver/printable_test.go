package smtpserver

import "testing"

func TestPrintable(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"plain text", 100, "plain text"},
		{"a\r\nb\tc", 100, "a  b c"},
		{" \x00bell\x07 ", 100, "?bell?"},
		{"caf\xc3\xa9", 100, "caf??"},
		{"abcdef", 3, "abc"},
		{"  spaced  ", 100, "spaced"},
	} {
		if got := Printable(c.in, c.max); got != c.want {
			t.Errorf("Printable(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}
