package rawmime

// AddressSpecials walks an address-list field value (RFC 5322 §3.4) and
// calls fn with the index and byte of each ',', ':' and ';' outside
// quoted strings, comments and angle brackets: where addresses and groups
// begin and end. fn returning false stops the walk. Unbalanced quotes,
// comments or brackets run to the end of the value.
func AddressSpecials(v string, fn func(i int, c byte) bool) {
	depth, quoted, angle := 0, false, false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case quoted:
			if c == '\\' {
				i++
			} else if c == '"' {
				quoted = false
			}
		case depth > 0:
			if c == '\\' {
				i++
			} else if c == '(' {
				depth++
			} else if c == ')' {
				depth--
			}
		case angle:
			if c == '>' {
				angle = false
			}
		case c == '"':
			quoted = true
		case c == '(':
			depth++
		case c == '<':
			angle = true
		case c == ',' || c == ':' || c == ';':
			if !fn(i, c) {
				return
			}
		}
	}
}
