package pgconf

// tokenKind is the kind of a guc-file.l token.
type tokenKind int

const (
	tokEOF         tokenKind = iota
	tokEOL                   // "\n"
	tokID                    // {LETTER}{LETTER_OR_DIGIT}*
	tokQualifiedID           // {ID}"."{ID}
	tokString                // '...' with '' and backslash escapes
	tokUnquoted              // {LETTER}({LETTER_OR_DIGIT}|[-._:/])*
	tokInteger               // {SIGN}?({DIGIT}+|0x{HEXDIGIT}+){UNIT_LETTER}*
	tokReal                  // {SIGN}?{DIGIT}*"."{DIGIT}*{EXPONENT}?
	tokEquals                // "="
	tokError                 // any other single byte
)

// token is one lexeme; text is the raw bytes as they appear in the file.
type token struct {
	kind tokenKind
	text string
	line int
}

// lexer reproduces the flex scanner of PostgreSQL's guc-file.l: at each
// position the longest match wins and, between matches of equal length, the
// rule listed first (ID, QUALIFIED_ID, STRING, UNQUOTED_STRING, INTEGER,
// REAL, "=") wins. A byte no rule matches is a one-byte error token.
type lexer struct {
	data []byte
	pos  int
	line int // 1-based line of data[pos]
}

func newLexer(data []byte) *lexer { return &lexer{data: data, line: 1} }

// next returns the next token, skipping blanks ([ \t\r]) and "#" comments.
// Any other whitespace (\f, \v) is not blank to PostgreSQL and comes back as
// an error token.
func (l *lexer) next() token {
	for l.pos < len(l.data) {
		switch c := l.data[l.pos]; c {
		case ' ', '\t', '\r':
			l.pos++
		case '#':
			// "#.*": flex's "." stops only at newline, so NUL and other bytes
			// are part of the comment.
			for l.pos < len(l.data) && l.data[l.pos] != '\n' {
				l.pos++
			}
		case '\n':
			t := token{kind: tokEOL, text: "\n", line: l.line}
			l.pos++
			l.line++
			return t
		default:
			return l.lexeme()
		}
	}
	return token{kind: tokEOF, line: l.line}
}

// lexeme matches a token at l.pos, which is not blank, comment or newline.
func (l *lexer) lexeme() token {
	d, p := l.data, l.pos
	kind, n := tokError, 1
	// Candidates in flex rule order; a later rule must be strictly longer.
	for _, c := range [...]struct {
		kind tokenKind
		n    int
	}{
		{tokID, matchID(d, p)},
		{tokQualifiedID, matchQualifiedID(d, p)},
		{tokString, matchString(d, p)},
		{tokUnquoted, matchUnquoted(d, p)},
		{tokInteger, matchInteger(d, p)},
		{tokReal, matchReal(d, p)},
		{tokEquals, matchByte(d, p, '=')},
	} {
		if c.n > 0 && (kind == tokError || c.n > n) {
			kind, n = c.kind, c.n
		}
	}
	t := token{kind: kind, text: string(d[p : p+n]), line: l.line}
	l.pos += n
	return t
}

// isLetter is guc-file.l's LETTER: [A-Za-z_\200-\377]. Every byte >= 0x80
// counts, so UTF-8 names and unquoted values lex as identifiers.
func isLetter(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isHexDigit(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// isUnitLetter is UNIT_LETTER: [a-zA-Z] (no underscore, no high bytes).
func isUnitLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// isLetterOrDigit is LETTER_OR_DIGIT: [A-Za-z_0-9\200-\377]. There is no "$".
func isLetterOrDigit(c byte) bool { return isLetter(c) || isDigit(c) }

// run returns the end of the run of bytes satisfying ok, starting at i.
func run(d []byte, i int, ok func(byte) bool) int {
	for i < len(d) && ok(d[i]) {
		i++
	}
	return i
}

func matchByte(d []byte, p int, c byte) int {
	if p < len(d) && d[p] == c {
		return 1
	}
	return 0
}

// matchID matches ID: {LETTER}{LETTER_OR_DIGIT}*.
func matchID(d []byte, p int) int {
	if p >= len(d) || !isLetter(d[p]) {
		return 0
	}
	return run(d, p+1, isLetterOrDigit) - p
}

// matchQualifiedID matches QUALIFIED_ID: {ID}"."{ID}, exactly one dot.
func matchQualifiedID(d []byte, p int) int {
	n := matchID(d, p)
	if n == 0 || p+n >= len(d) || d[p+n] != '.' {
		return 0
	}
	m := matchID(d, p+n+1)
	if m == 0 {
		return 0
	}
	return n + 1 + m
}

// matchUnquoted matches UNQUOTED_STRING: {LETTER}({LETTER_OR_DIGIT}|[-._:/])*.
func matchUnquoted(d []byte, p int) int {
	if p >= len(d) || !isLetter(d[p]) {
		return 0
	}
	return run(d, p+1, func(c byte) bool {
		return isLetterOrDigit(c) || c == '-' || c == '.' || c == ':' || c == '/'
	}) - p
}

// matchString matches STRING: \'([^'\\\n]|\\.|\'\')*\'. A quote can either
// close the string or, doubled, continue it; the longest reading wins, so we
// remember the last place the string could have closed. A backslash escapes
// any byte but a newline. An unterminated string does not match at all (the
// lone quote then becomes an error token).
func matchString(d []byte, p int) int {
	if p >= len(d) || d[p] != '\'' {
		return 0
	}
	end := 0
	for i := p + 1; i < len(d); {
		switch d[i] {
		case '\n':
			return end
		case '\\':
			if i+1 >= len(d) || d[i+1] == '\n' {
				return end
			}
			i += 2
		case '\'':
			end = i + 1 - p
			if i+1 < len(d) && d[i+1] == '\'' {
				i += 2
				continue
			}
			return end
		default:
			i++
		}
	}
	return end
}

// matchSign skips an optional SIGN ("-"|"+").
func matchSign(d []byte, p int) int {
	if p < len(d) && (d[p] == '-' || d[p] == '+') {
		return p + 1
	}
	return p
}

// matchInteger matches INTEGER: {SIGN}?({DIGIT}+|0x{HEXDIGIT}+){UNIT_LETTER}*,
// so "100MB", "-1", "0x1F" and "10s" are one token (and "1e5" is "1e" + "5").
func matchInteger(d []byte, p int) int {
	i := matchSign(d, p)
	dec := run(d, i, isDigit)
	if dec == i {
		return 0
	}
	end := run(d, dec, isUnitLetter)
	if d[i] == '0' && i+2 < len(d) && d[i+1] == 'x' && isHexDigit(d[i+2]) {
		end = max(end, run(d, run(d, i+2, isHexDigit), isUnitLetter))
	}
	return end - p
}

// matchReal matches REAL: {SIGN}?{DIGIT}*"."{DIGIT}*{EXPONENT}?, where
// EXPONENT is [Ee]{SIGN}?{DIGIT}+. Note that a lone "." is a REAL, and that
// no unit may follow ("1.5ms" is "1.5" + "ms").
func matchReal(d []byte, p int) int {
	i := run(d, matchSign(d, p), isDigit)
	if i >= len(d) || d[i] != '.' {
		return 0
	}
	i = run(d, i+1, isDigit)
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		j := matchSign(d, i+1)
		if k := run(d, j, isDigit); k > j {
			i = k
		}
	}
	return i - p
}
