package imapproto

import (
	"testing"
	"unicode/utf8"
)

func TestMailboxUTF7(t *testing.T) {
	// Pairs of (UTF-8, modified UTF-7), both ways.
	for _, tc := range []struct{ utf8, utf7 string }{
		{"", ""},
		{"INBOX", "INBOX"},
		{"a&b", "a&-b"},
		{"&", "&-"},
		{"&&", "&-&-"},
		{"&é", "&-&AOk-"},
		{"é&é", "&AOk-&-&AOk-"},
		{"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
		{"Entwürfe", "Entw&APw-rfe"},
		{"Gelöschte Elemente", "Gel&APY-schte Elemente"},
		{"Корзина", "&BBoEPgRABDcEOAQ9BDA-"},
		{"😀", "&2D3eAA-"},
		{"a😀b€", "a&2D3eAA-b&IKw-"},
		{"a😀€b", "a&2D3eACCs-b"},
		{"\x01", "&AAE-"},
		{"tab\there", "tab&AAk-here"},
	} {
		if got := encodeMailboxUTF7(tc.utf8); got != tc.utf7 {
			t.Errorf("encode(%q) = %q, want %q", tc.utf8, got, tc.utf7)
		}
		got, err := decodeMailboxUTF7(tc.utf7)
		if err != nil || got != tc.utf8 {
			t.Errorf("decode(%q) = %q, %v; want %q", tc.utf7, got, err, tc.utf8)
		}
	}
}

func TestMailboxUTF7Bad(t *testing.T) {
	for _, s := range []string{
		"&",             // unterminated
		"a&U,BTFw",      // unterminated
		"&U,BTFw-&",     // unterminated second shift
		"&!-",           // not base64
		"&/-",           // standard base64's "/" is not the modified one
		"&AGE-",         // "a" in base64
		"&AAA-",         // NUL
		"&2D0-",         // lone high surrogate
		"&3gA-",         // lone low surrogate
		"&2D3YPQ-",      // high surrogate then high surrogate
		"&APy-",         // bits left over that are not zero
		"&APw=-",        // padding
		"&A-",           // less than one unit
		"Entwürfe",      // 8-bit
		"tab\there",     // control
		"&2D3eAA-&IKw-", // two shifts in a row
		"!#$&'+,-.0123", // list pattern of the issue: "&'+,-" is no shift
	} {
		if got, err := decodeMailboxUTF7(s); err == nil {
			t.Errorf("decode(%q) = %q, want an error", s, got)
		}
	}
}

func TestMailboxUTF7Invalid(t *testing.T) {
	// Invalid UTF-8 encodes as U+FFFD.
	if got, want := encodeMailboxUTF7("a\xffb"), "a&,,0-b"; got != want {
		t.Errorf("encode = %q, want %q", got, want)
	}
}

func FuzzMailboxUTF7(f *testing.F) {
	for _, s := range []string{"INBOX", "a&-b", "Entw&APw-rfe", "&2D3eACCs-", "&", "&AGE-", "Entwürfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		dec, err := decodeMailboxUTF7(s)
		if err == nil {
			if !utf8.ValidString(dec) {
				t.Fatalf("decode(%q) = %q: not UTF-8", s, dec)
			}
			// One spelling per name: decoding then encoding gives the
			// input back.
			if enc := encodeMailboxUTF7(dec); enc != s {
				t.Fatalf("decode(%q) = %q, encodes as %q", s, dec, enc)
			}
		}
		if utf8.ValidString(s) {
			enc := encodeMailboxUTF7(s)
			back, err := decodeMailboxUTF7(enc)
			if err != nil && !containsNUL(s) {
				t.Fatalf("encode(%q) = %q does not decode: %v", s, enc, err)
			}
			if err == nil && back != s {
				t.Fatalf("encode(%q) = %q decodes as %q", s, enc, back)
			}
		}
	})
}

func containsNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}
