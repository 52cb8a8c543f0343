package maildir

import (
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Modified UTF-7 (RFC 3501 §5.1.3) is how Dovecot's Maildir++ layout
// writes a mailbox name that is not plain US-ASCII: printable US-ASCII
// stands for itself except "&", written "&-"; any other run is "&", the
// modified base64 ("," for "/", no padding) of its UTF-16BE form, "-".

const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,"

var errUTF7 = errors.New("maildir: invalid modified UTF-7")

func plainASCII(r rune) bool { return r >= 0x20 && r <= 0x7e }

// encodeUTF7 encodes a UTF-8 name; invalid UTF-8 becomes U+FFFD.
func encodeUTF7(s string) string {
	var b strings.Builder
	var run []uint16
	flush := func() {
		if len(run) == 0 {
			return
		}
		b.WriteByte('&')
		var bits uint32
		n := 0
		for _, u := range run {
			bits = bits<<16 | uint32(u)
			n += 16
			for n >= 6 {
				n -= 6
				b.WriteByte(b64[(bits>>uint(n))&0x3f])
			}
		}
		if n > 0 {
			b.WriteByte(b64[(bits<<uint(6-n))&0x3f])
		}
		b.WriteByte('-')
		run = run[:0]
	}
	for _, r := range s {
		if plainASCII(r) {
			flush()
			if r == '&' {
				b.WriteString("&-")
			} else {
				b.WriteRune(r)
			}
			continue
		}
		run = utf16.AppendRune(run, r)
	}
	flush()
	return b.String()
}

// decodeUTF7 decodes a modified UTF-7 name strictly: one name has one
// spelling, so a shift that holds printable US-ASCII, bits left over,
// an unpaired surrogate or a byte outside printable US-ASCII is an error.
func decodeUTF7(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", errUTF7
		}
		if c != '&' {
			b.WriteByte(c)
			i++
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return "", errUTF7
		}
		enc := s[i+1 : i+1+end]
		i += end + 2
		if enc == "" {
			b.WriteByte('&')
			continue
		}
		var units []uint16
		var bits uint32
		n := 0
		for j := 0; j < len(enc); j++ {
			v := strings.IndexByte(b64, enc[j])
			if v < 0 {
				return "", errUTF7
			}
			bits = bits<<6 | uint32(v)
			n += 6
			if n >= 16 {
				n -= 16
				units = append(units, uint16(bits>>uint(n)))
				bits &= 1<<uint(n) - 1
			}
		}
		if n >= 6 || bits != 0 || len(units) == 0 {
			return "", errUTF7
		}
		for k := 0; k < len(units); k++ {
			r := rune(units[k])
			if utf16.IsSurrogate(r) {
				if k+1 == len(units) {
					return "", errUTF7
				}
				r = utf16.DecodeRune(r, rune(units[k+1]))
				if r == utf8.RuneError {
					return "", errUTF7
				}
				k++
			}
			if plainASCII(r) {
				return "", errUTF7
			}
			b.WriteRune(r)
		}
		// Two shifts in a row would be one.
		if i < len(s) && s[i] == '&' && i+1 < len(s) && s[i+1] != '-' {
			return "", errUTF7
		}
	}
	return b.String(), nil
}
