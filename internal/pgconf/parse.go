package pgconf

import "fmt"

// Setting is one resolved parameter and where its winning value came from.
type Setting struct {
	Name  string // lower-case
	Value string // unquoted, unescaped
	File  string // absolute path of the file that set it last
	Line  int
}

// statement is one "name [=] value" line; rawName keeps the spelling used in
// the file, which PostgreSQL looks at for data_directory (see load.go).
type statement struct {
	Setting
	rawName string
}

// Parse parses one file's content without following includes (directives come
// back as settings named include/include_if_exists/include_dir); for fuzzing
// and tests. name is used for Setting.File and in error messages.
func Parse(name string, data []byte) ([]Setting, error) {
	var out []Setting
	err := parse(name, data, func(st statement) error {
		out = append(out, st.Setting)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// parse runs guc-file.l's ParseConfigFp grammar over data, calling fn for each
// statement in order, and stops at the first syntax error or error from fn.
//
// A line is empty, or: an ID or QUALIFIED_ID name; an optional "="; a value
// that is an ID, STRING, INTEGER, REAL or UNQUOTED_STRING; then end of line
// or end of file. A QUALIFIED_ID is not a value, so "x = a.b" is a syntax
// error while "x = a.b.c" (an UNQUOTED_STRING) is not.
func parse(name string, data []byte, fn func(statement) error) error {
	lx := newLexer(data)
	for {
		t := lx.next()
		switch t.kind {
		case tokEOF:
			return nil
		case tokEOL:
			continue
		case tokID, tokQualifiedID:
		default:
			return syntaxError(name, t)
		}
		st := statement{rawName: t.text}
		st.Name, st.File, st.Line = lowerASCII(t.text), name, t.line

		t = lx.next()
		if t.kind == tokEquals {
			t = lx.next()
		}
		switch t.kind {
		case tokString:
			st.Value = unquote(t.text)
		case tokID, tokUnquoted, tokInteger, tokReal:
			st.Value = t.text
		default:
			return syntaxError(name, t)
		}

		if t = lx.next(); t.kind != tokEOL && t.kind != tokEOF {
			return syntaxError(name, t)
		}
		if err := fn(st); err != nil {
			return err
		}
		if t.kind == tokEOF {
			return nil
		}
	}
}

// syntaxError words the error as PostgreSQL does. Unlike PostgreSQL, which
// reports the line before when the file ends without a newline, the line is
// always the one the offending token is on.
func syntaxError(file string, t token) error {
	if t.kind == tokEOL || t.kind == tokEOF {
		return fmt.Errorf("syntax error in file %q line %d, near end of line", file, t.line)
	}
	return fmt.Errorf("syntax error in file %q line %d, near token %q", file, t.line, cString(t.text))
}

// lowerASCII lower-cases A-Z only, like guc_name_compare; other bytes
// (including UTF-8) are left alone.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
