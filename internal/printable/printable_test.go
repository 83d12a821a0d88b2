package printable

import (
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain text: äöü 日本 ✓", "plain text: äöü 日本 ✓"},
		{"\x1b]0;owned\x07title", `\x1b]0;owned\x07title`},
		{"red \x1b[31mtext\x1b[0m", `red \x1b[31mtext\x1b[0m`},
		{"two\nlines\r\tx", `two\nlines\r\tx`},
		{"del\x7f", `del\x7f`},
		{"c1 \u009b31m", `c1 \u009B31m`},
		{"bidi \u202Eevil", `bidi \u202Eevil`},
		{"bad \xff byte", `bad \xff byte`},
		{"", ""},
	} {
		if got := Escape(c.in); got != c.want {
			t.Errorf("Escape(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzEscape: the result is valid UTF-8 and holds only printable runes.
func FuzzEscape(f *testing.F) {
	f.Add("\x1b[2J\x1b]52;c;AAAA\x07")
	f.Add("ok \u202E\xff")
	f.Fuzz(func(t *testing.T, s string) {
		out := Escape(s)
		if !utf8.ValidString(out) {
			t.Fatalf("Escape(%q) = %q: invalid UTF-8", s, out)
		}
		for _, r := range out {
			if !unicode.IsPrint(r) {
				t.Fatalf("Escape(%q) = %q: holds %U", s, out, r)
			}
		}
	})
}
