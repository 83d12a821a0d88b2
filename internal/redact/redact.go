package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces every secret.
const Mask = "xxxxx"

func isSecret(key string) bool {
	k := strings.ToLower(key)
	return k == "password" || k == "sslpassword"
}

func isURI(s string) bool {
	t := strings.ToLower(strings.TrimLeft(s, " \t\n\r\f\v"))
	return strings.HasPrefix(t, "postgresql://") || strings.HasPrefix(t, "postgres://")
}

// Conninfo returns conninfo with every password and sslpassword value
// replaced by Mask, in either form. What follows a syntax error that libpq
// would reject is dropped: its boundaries are not certain.
func Conninfo(conninfo string) string {
	if isURI(conninfo) {
		return uri(conninfo)
	}
	return keywords(conninfo)
}

// keywords redacts the keyword = value form, scanning as conninfo_parse does.
func keywords(s string) string {
	var b strings.Builder
	i := 0
	for {
		start := i
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i == len(s) {
			b.WriteString(s[start:])
			return b.String()
		}
		k := i
		for i < len(s) && s[i] != '=' && !isSpace(s[i]) {
			i++
		}
		key := s[k:i]
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i == len(s) || s[i] != '=' {
			return unparsable(&b, s[:start])
		}
		i++
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		v := i
		end, ok := valueEnd(s, i)
		if !ok {
			return unparsable(&b, s[:start])
		}
		b.WriteString(s[start:v])
		if isSecret(key) {
			b.WriteString(Mask)
		} else {
			b.WriteString(s[v:end])
		}
		i = end
	}
}

// valueEnd returns the end of the value at s[i:]: quoted up to the closing
// quote, or bare up to a blank, backslash escaping the next byte in both.
func valueEnd(s string, i int) (int, bool) {
	if i < len(s) && s[i] == '\'' {
		for i++; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++
			case '\'':
				return i + 1, true
			}
		}
		return 0, false
	}
	for ; i < len(s) && !isSpace(s[i]); i++ {
		if s[i] == '\\' {
			i++
		}
	}
	return min(i, len(s)), true
}

func unparsable(b *strings.Builder, parsed string) string {
	b.Reset()
	b.WriteString(keywords(parsed))
	if parsed != "" {
		b.WriteByte(' ')
	}
	b.WriteString("(rest not shown: not a valid conninfo)")
	return b.String()
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// uri redacts the password of the user info and the secret query parameters.
func uri(s string) string {
	scheme := strings.Index(s, "://") + 3
	rest := s[scheme:]
	out := s[:scheme]
	// libpq takes the user info up to an '@' found before the first '/';
	// pgconn's parser takes blanks, '/', '?' and '&' into the password too.
	// To hide every password either may read, the user info here ends at the
	// last '@' of all; what that hides of a host or query is only shown less.
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		user, _, hasPW := strings.Cut(rest[:at], ":")
		out += user
		if hasPW {
			out += ":" + Mask
		}
		out += "@"
		rest = rest[at+1:]
	}
	path, query, hasQuery := strings.Cut(rest, "?")
	out += path
	if !hasQuery {
		return hideKeywords(out)
	}
	params := strings.Split(query, "&")
	for i, p := range params {
		k, _, _ := strings.Cut(p, "=")
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		if eq := strings.Index(p, "="); eq >= 0 && isSecret(k) {
			params[i] = p[:eq+1] + Mask
		}
	}
	return hideKeywords(out) + "?" + strings.Join(params, "&")
}

// hideKeywords hides password=... wherever it still stands (a user part
// without ':' may hold a query of its own).
func hideKeywords(s string) string { return keywordRE.ReplaceAllString(s, "${1}"+Mask) }

var (
	// password = value in running text: quoted (possibly unterminated), or
	// bare to a blank (the quoting backquote of an error is hidden too).
	keywordRE = regexp.MustCompile(`(?i)(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'?|(?:[^\s\\]|\\.)*)`)
	// URI user info with a password, to the last '@' of the text: pgconn
	// takes blanks and control characters, line ends too, into user and password.
	uriRE = regexp.MustCompile(`(?is)(postgres(?:ql)?://[^:@/]*:).*@`)
)

// Text returns s with every password that a conninfo quoted in it may carry
// replaced by Mask: keyword forms (password=..., password = '...',
// sslpassword=...) and URI forms (://user:password@, ?password=...).
// It errs on the side of hiding more.
func Text(s string) string {
	return hideKeywords(uriRE.ReplaceAllString(s, "${1}"+Mask+"@"))
}
