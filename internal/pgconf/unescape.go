package pgconf

import "strings"

// unquote turns a STRING token into its value the way guc-file.l's
// DeescapeQuotedString does: ” is one quote; \b \f \n \r \t are control
// characters; \ followed by 1 to 3 octal digits is that byte (mod 256); a
// backslash before any other byte yields that byte.
//
// PostgreSQL handles the token and the result as C strings, and we keep its
// behaviour for NUL bytes: the token is cut at a raw NUL (after which the
// final character kept is dropped, as if it were the closing quote), and the
// value ends at the first NUL, raw or from an escape such as \0.
func unquote(tok string) string {
	s := cString(tok)
	if len(s) < 2 {
		// Only reachable through a raw NUL right after the opening quote;
		// PostgreSQL's result is undefined there and, in practice, empty.
		return ""
	}
	s = s[1:]                // the closing quote (or the byte standing in for it) goes below
	at := func(i int) byte { // C reads the terminating NUL past the end
		if i < len(s) {
			return s[i]
		}
		return 0
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			i++
			switch e := at(i); e {
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case '0', '1', '2', '3', '4', '5', '6', '7':
				v, k := 0, 0
				for ; k < 3 && at(i+k) >= '0' && at(i+k) <= '7'; k++ {
					v = v<<3 + int(at(i+k)-'0')
				}
				i += k - 1
				c = byte(v)
			default:
				c = e
			}
		case c == '\'' && at(i+1) == '\'':
			i++
		}
		b.WriteByte(c)
	}
	v := b.String()
	return cString(v[:len(v)-1]) // drop the closing quote
}

// cString returns s up to its first NUL byte, as C code would see it.
func cString(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return s[:i]
	}
	return s
}
