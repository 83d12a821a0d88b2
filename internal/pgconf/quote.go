package pgconf

import "strings"

// Quote returns value as a postgresql.conf single-quoted string literal (”
// for embedded quotes; backslashes doubled).
//
// A raw newline cannot appear inside a quoted string (the lexer stops at it),
// so newline and carriage return are written as \n and \r, which the server
// reads back as those bytes. PostgreSQL values are C strings and cannot hold
// a NUL byte; a NUL is written as \000, which ends the value there when read.
func Quote(value string) string {
	var b strings.Builder
	b.Grow(len(value) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(value); i++ {
		switch c := value[i]; c {
		case '\'':
			b.WriteString("''")
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case 0:
			b.WriteString(`\000`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String()
}
