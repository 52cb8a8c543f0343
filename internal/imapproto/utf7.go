package imapproto

// Modified UTF-7 (RFC 3501 §5.1.3): the encoding of mailbox names for
// clients that did not enable UTF8=ACCEPT. Printable US-ASCII stands for
// itself except "&", written "&-"; any other run of characters is
// written "&" + the modified base64 (",", not "/", no padding) of its
// UTF-16BE form + "-".

import (
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

const mutf7Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,"

// mutf7Value maps a byte of the modified base64 alphabet to its 6-bit
// value, 0xff for a byte that is not in it.
var mutf7Value = func() [256]byte {
	var t [256]byte
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(mutf7Alphabet); i++ {
		t[mutf7Alphabet[i]] = byte(i)
	}
	return t
}()

var errBadUTF7 = errors.New("mailbox name is not valid modified UTF-7")

// mutf7Plain reports whether c stands for itself in modified UTF-7.
func mutf7Plain(c byte) bool { return c >= 0x20 && c <= 0x7e }

// decodeMailboxUTF7 decodes a modified UTF-7 mailbox name to UTF-8. It
// is strict: bytes outside printable US-ASCII, an unterminated or
// malformed shift, bits left over, unpaired surrogates, NUL, printable
// US-ASCII written in base64 and two shifts in a row are errors, so that
// one name has one spelling.
func decodeMailboxUTF7(s string) (string, error) {
	plain := true
	for i := 0; i < len(s); i++ {
		if s[i] == '&' || !mutf7Plain(s[i]) {
			plain = false
			break
		}
	}
	if plain {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/2)
	var units []uint16
	shiftEnd := -1 // where the last base64 shift ended
	for i := 0; i < len(s); {
		c := s[i]
		if !mutf7Plain(c) {
			return "", errBadUTF7
		}
		if c != '&' {
			b.WriteByte(c)
			i++
			continue
		}
		// A shift: "&-" or "&" base64 "-".
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return "", errBadUTF7
		}
		enc := s[i+1 : i+1+end]
		i += end + 2
		if enc == "" {
			b.WriteByte('&')
			continue
		}
		if shiftEnd == i-len(enc)-2 {
			// Two shifts in a row are one, spelt as one.
			return "", errBadUTF7
		}
		shiftEnd = i
		units = units[:0]
		var acc uint32
		var nbits uint
		for j := 0; j < len(enc); j++ {
			v := mutf7Value[enc[j]]
			if v == 0xff {
				return "", errBadUTF7
			}
			acc = acc<<6 | uint32(v)
			nbits += 6
			if nbits >= 16 {
				nbits -= 16
				units = append(units, uint16(acc>>nbits))
				acc &= 1<<nbits - 1
			}
		}
		// What is left must be padding: fewer than 6 bits, all zero.
		if nbits >= 6 || acc != 0 || len(units) == 0 {
			return "", errBadUTF7
		}
		for k := 0; k < len(units); k++ {
			u := rune(units[k])
			switch {
			case utf16.IsSurrogate(u):
				if u >= 0xdc00 || k+1 >= len(units) {
					return "", errBadUTF7
				}
				r := utf16.DecodeRune(u, rune(units[k+1]))
				if r == utf8.RuneError {
					return "", errBadUTF7
				}
				b.WriteRune(r)
				k++
			case u == 0 || (u < 0x80 && mutf7Plain(byte(u))):
				return "", errBadUTF7
			default:
				b.WriteRune(u)
			}
		}
	}
	return b.String(), nil
}

// encodeMailboxUTF7 encodes a UTF-8 mailbox name in modified UTF-7.
// Invalid UTF-8 is encoded as U+FFFD.
func encodeMailboxUTF7(s string) string {
	plain := true
	for i := 0; i < len(s); i++ {
		if s[i] == '&' || !mutf7Plain(s[i]) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) * 2)
	var units []uint16
	for i := 0; i < len(s); {
		c := s[i]
		if c == '&' {
			b.WriteString("&-")
			i++
			continue
		}
		if mutf7Plain(c) {
			b.WriteByte(c)
			i++
			continue
		}
		// A run of characters that do not stand for themselves.
		units = units[:0]
		for i < len(s) && !mutf7Plain(s[i]) {
			r, size := utf8.DecodeRuneInString(s[i:])
			i += size
			if r >= 0x10000 {
				r1, r2 := utf16.EncodeRune(r)
				units = append(units, uint16(r1), uint16(r2))
			} else {
				units = append(units, uint16(r))
			}
		}
		b.WriteByte('&')
		var acc uint32
		var nbits uint
		for _, u := range units {
			acc = acc<<16 | uint32(u)
			nbits += 16
			for nbits >= 6 {
				nbits -= 6
				b.WriteByte(mutf7Alphabet[acc>>nbits&0x3f])
			}
			acc &= 1<<nbits - 1
		}
		if nbits > 0 {
			b.WriteByte(mutf7Alphabet[acc<<(6-nbits)&0x3f])
		}
		b.WriteByte('-')
	}
	return b.String()
}
