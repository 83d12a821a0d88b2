package printable

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestOneLine(t *testing.T) {
	for _, tt := range []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"two\nlines\t and  space ", 100, "two lines and space"},
		{"abcdef", 3, "abc…"},
		{"aé", 2, "a…"}, // é is 2 bytes: never half of it
		{"日本語", 4, "日…"},
		{"日本語", 6, "日本…"},
		{"日本語", 9, "日本語"},
	} {
		if got := OneLine(tt.in, tt.max); got != tt.want {
			t.Errorf("OneLine(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
	long := strings.Repeat("ü", 300)
	for max := 0; max < 20; max++ {
		if got := OneLine(long, max); !utf8.ValidString(got) || len(got) > max+len("…") {
			t.Errorf("OneLine(ü×300, %d) = %q: split a rune or too long", max, got)
		}
	}
}
