package pgconf

import (
	"strings"
	"testing"
)

// kv is a setting without its file, for compact expectations.
type kv struct {
	name, value string
	line        int
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []kv
	}{
		{"debian trailing comment after quoted path",
			"data_directory = '/var/lib/postgresql/15/main'\t\t# use data in another directory\n",
			[]kv{{"data_directory", "/var/lib/postgresql/15/main", 1}}},
		{"comment right after unquoted value",
			"port = 5432# no space\n",
			[]kv{{"port", "5432", 1}}},
		{"hash inside quoted string is not a comment",
			"primary_conninfo = 'password=a#b host=h' # real comment\n",
			[]kv{{"primary_conninfo", "password=a#b host=h", 1}}},
		{"equals sign optional",
			"port 5433\nlisten_addresses '*'\n",
			[]kv{{"port", "5433", 1}, {"listen_addresses", "*", 2}}},
		{"no blanks around equals",
			"port=5433\n",
			[]kv{{"port", "5433", 1}}},
		{"blank and comment lines count for line numbers",
			"\n# comment\n   \t\n\nwork_mem = 4MB\n",
			[]kv{{"work_mem", "4MB", 5}}},
		{"crlf line endings",
			"a = 1\r\nb = 'two'\r\n",
			[]kv{{"a", "1", 1}, {"b", "two", 2}}},
		{"no newline at end of file",
			"a = 1\nb = 2",
			[]kv{{"a", "1", 1}, {"b", "2", 2}}},
		{"unquoted identifier value",
			"wal_level = replica\n",
			[]kv{{"wal_level", "replica", 1}}},
		{"unquoted string with - . : /",
			"x = foo-bar/baz:1.2\ny = a.b.c\n",
			[]kv{{"x", "foo-bar/baz:1.2", 1}, {"y", "a.b.c", 2}}},
		{"backslash escapes",
			`x = 'a\tb\nc\rd\be\ff\\g\'h\qi'` + "\n",
			[]kv{{"x", "a\tb\nc\rd\be\ff\\g'hqi", 1}}},
		{"octal escapes up to three digits",
			`x = '\101\1011\7770\8'` + "\n",
			[]kv{{"x", "AA1\xff08", 1}}},
		{"octal zero ends the value like a C string",
			`x = 'ab\0cd'` + "\n",
			[]kv{{"x", "ab", 1}}},
		{"raw NUL in string keeps PostgreSQL's truncation",
			"x = 'ab\x00cd'\n",
			[]kv{{"x", "a", 1}}},
		{"doubled quote",
			"x = 'it''s'\ny = ''''\nz = ''\n",
			[]kv{{"x", "it's", 1}, {"y", "'", 2}, {"z", "", 3}}},
		{"numbers with units",
			"shared_buffers = 128MB\ncheckpoint_timeout 10s\nmax_wal_size = 1GB\n",
			[]kv{{"shared_buffers", "128MB", 1}, {"checkpoint_timeout", "10s", 2}, {"max_wal_size", "1GB", 3}}},
		{"hex, negative, signed and float numbers",
			"a = 0x1F\nb = -1\nc = +3\nd = 1.5e3\ne = .5\nf = -.5e-3\ng = 0x1Fkb\nh = .\n",
			[]kv{{"a", "0x1F", 1}, {"b", "-1", 2}, {"c", "+3", 3}, {"d", "1.5e3", 4}, {"e", ".5", 5},
				{"f", "-.5e-3", 6}, {"g", "0x1Fkb", 7}, {"h", ".", 8}}},
		{"qualified name",
			"pg_standby.checkpoint = on\n",
			[]kv{{"pg_standby.checkpoint", "on", 1}}},
		{"names are case-insensitive and stored lower-case",
			"Primary_ConnInfo = 'host=a'\nPG_STANDBY.Checkpoint = ON\n",
			[]kv{{"primary_conninfo", "host=a", 1}, {"pg_standby.checkpoint", "ON", 2}}},
		{"bytes above 0x7f are letters",
			"x = café\n",
			[]kv{{"x", "café", 1}}},
		{"directives come back as settings",
			"include 'a.conf'\nINCLUDE_DIR conf.d/\ninclude_if_exists = 'b.conf'\n",
			[]kv{{"include", "a.conf", 1}, {"include_dir", "conf.d/", 2}, {"include_if_exists", "b.conf", 3}}},
		{"empty file", "", nil},
		{"repeated names are all returned",
			"a = 1\na = 2\n",
			[]kv{{"a", "1", 1}, {"a", "2", 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("/x/postgresql.conf", []byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d settings %+v, want %d", len(got), got, len(tt.want))
			}
			for i, w := range tt.want {
				g := got[i]
				if g.Name != w.name || g.Value != w.value || g.Line != w.line || g.File != "/x/postgresql.conf" {
					t.Errorf("setting %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestParseSyntaxErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // the part after `syntax error in file "/x/postgresql.conf" `
	}{
		{"offending token on its line",
			"a = 1\n\n# c\nb = 'x' foo\n", `line 4, near token "foo"`},
		{"qualified id is not a value", "x = a.b\n", `line 1, near token "a.b"`},
		{"two dots in a name", "a.b.c = 1\n", `line 1, near token "a.b.c"`},
		{"unquoted dotted directory name is a qualified id", "include_dir = conf.d\n", `line 1, near token "conf.d"`},
		{"number followed by dash", "x = 02-a\n", `line 1, near token "-"`},
		{"dash in a name", "foo-bar = 1\n", `line 1, near token "foo-bar"`},
		{"dollar is not an identifier character", "a$b = 1\n", `line 1, near token "$"`},
		{"exponent needs a dot", "x = 1e5\n", `line 1, near token "5"`},
		{"no unit after a real", "x = 1.5ms\n", `line 1, near token "ms"`},
		{"missing value", "x =\n", `line 1, near end of line`},
		{"missing value at end of file", "a = 1\nx", `line 2, near end of line`},
		{"unterminated string", "x = 'abc\n", `line 1, near token "'"`},
		{"newline inside string", "x = 'a\nb'\n", `line 1, near token "'"`},
		{"backslash before newline", "x = 'a\\\nb'\n", `line 1, near token "'"`},
		{"two values", "x = 1 2\n", `line 1, near token "2"`},
		{"sign without digits", "x = -foo\n", `line 1, near token "-"`},
		{"two equals signs", "x = = 1\n", `line 1, near token "="`},
		{"quoted name", "'x' = 1\n", `line 1, near token "'x'"`},
		{"line starting with equals", "= 1\n", `line 1, near token "="`},
		{"name starting with digit", "1x = 1\n", `line 1, near token "1x"`},
		{"form feed is not a blank", "x = 1\f\n", `line 1, near token "\f"`},
		{"NUL outside a string", "x = 1\x00\n", `line 1, near token ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("/x/postgresql.conf", []byte(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded with %+v, want error", got)
			}
			want := `syntax error in file "/x/postgresql.conf" ` + tt.want
			if err.Error() != want {
				t.Errorf("error\n got %s\nwant %s", err, want)
			}
		})
	}
}

// TestLexerLongestMatch pins the flex tie-breaking that decides token kinds.
func TestLexerLongestMatch(t *testing.T) {
	tests := []struct {
		in   string
		kind tokenKind
		text string
	}{
		{"abc ", tokID, "abc"},
		{"a.b ", tokQualifiedID, "a.b"},
		{"a.b.c ", tokUnquoted, "a.b.c"},
		{"a. ", tokUnquoted, "a."},
		{"a-b ", tokUnquoted, "a-b"},
		{"100MB ", tokInteger, "100MB"},
		{"0x1F ", tokInteger, "0x1F"},
		{"0xg ", tokInteger, "0xg"},
		{"1e5 ", tokInteger, "1e"},
		{"1.5e3 ", tokReal, "1.5e3"},
		{"1.5e ", tokReal, "1.5"},
		{". ", tokReal, "."},
		{"-. ", tokReal, "-."},
		{"'a''b' ", tokString, "'a''b'"},
		{"'a'' b ", tokString, "'a'"},
		{`'a\'' `, tokString, `'a\''`},
		{"'abc", tokError, "'"},
		{"- ", tokError, "-"},
		{"= ", tokEquals, "="},
	}
	for _, tt := range tests {
		got := newLexer([]byte(tt.in)).next()
		if got.kind != tt.kind || got.text != tt.text {
			t.Errorf("lex %q = kind %d %q, want kind %d %q", tt.in, got.kind, got.text, tt.kind, tt.text)
		}
	}
}

func TestParseErrorNamesFile(t *testing.T) {
	_, err := Parse("/etc/postgresql/15/main/conf.d/x.conf", []byte("ok = 1\nbad bad bad\n"))
	if err == nil || !strings.Contains(err.Error(), `"/etc/postgresql/15/main/conf.d/x.conf" line 2`) {
		t.Fatalf("error %v does not name file and line", err)
	}
}
