package pgconf

import "testing"

func TestQuote(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "host=a port=5432", `'host=a port=5432'`},
		{"empty", "", `''`},
		{"embedded quote is doubled", "it's", `'it''s'`},
		{"backslash is doubled", `C:\dir`, `'C:\\dir'`},
		{"newline and carriage return are escaped", "a\nb\rc", `'a\nb\rc'`},
		{"tab and high bytes stay", "a\tcafé", "'a\tcafé'"},
		{"hash needs no escaping inside quotes", "password=a#b", `'password=a#b'`},
		{"NUL ends the value", "a\x00b", `'a\000b'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Quote(tt.in); got != tt.want {
				t.Errorf("Quote(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestQuoteRoundTrip(t *testing.T) {
	for _, v := range []string{
		"", "'", "''", `\`, `\'`, "a\nb", "\r\n", "host=h password='x\\y'", "\x01\x7f\xff",
		`\101`, "trailing backslash\\", "# not a comment",
	} {
		roundTrip(t, v)
	}
	// Values are C strings to PostgreSQL: a NUL ends them.
	got, err := Parse("q.conf", []byte("x = "+Quote("ab\x00cd")+"\n"))
	if err != nil || len(got) != 1 || got[0].Value != "ab" {
		t.Errorf("NUL: got %+v, %v; want value \"ab\"", got, err)
	}
}

// roundTrip checks that Quote(v) written as a configuration line reads back
// as v.
func roundTrip(t *testing.T, v string) {
	t.Helper()
	line := "x = " + Quote(v) + "\n"
	got, err := Parse("quote.conf", []byte(line))
	if err != nil {
		t.Fatalf("Parse(%q) for value %q: %v", line, v, err)
	}
	if len(got) != 1 || got[0].Name != "x" || got[0].Value != v {
		t.Fatalf("Parse(%q) = %+v, want x = %q", line, got, v)
	}
}
