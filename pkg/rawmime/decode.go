package rawmime

import "encoding/base64"

// DecodeBase64 decodes a base64 body (RFC 2045 §6.8) leniently, as mail
// clients do: characters outside the alphabet (line breaks, padding,
// stray bytes) are skipped, padding is optional and a dangling last
// character is dropped. The error is base64's on what remains, with
// what decoded before it.
func DecodeBase64(data []byte) ([]byte, error) {
	clean := make([]byte, 0, len(data))
	for _, c := range data {
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' {
			clean = append(clean, c)
		}
	}
	if len(clean)%4 == 1 {
		clean = clean[:len(clean)-1]
	}
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
	n, err := base64.RawStdEncoding.Decode(out, clean)
	return out[:n], err
}
