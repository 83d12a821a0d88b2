package redact

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestConninfo(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"host=db1 user=rep password=S3cret", "host=db1 user=rep password=xxxxx"},
		{"host=db1 password = S3cret port=5432", "host=db1 password = xxxxx port=5432"},
		{"host=db1 password\t=\tS3cret", "host=db1 password\t=\txxxxx"},
		{"password='S3 cret' host=db1", "password=xxxxx host=db1"},
		{`password='S3\'cret' host=db1`, "password=xxxxx host=db1"},
		{`password = 'S3\\' host=db1`, "password = xxxxx host=db1"},
		{`password=S3\ cret host=db1`, "password=xxxxx host=db1"},
		{"sslpassword=S3cret sslkey=/k", "sslpassword=xxxxx sslkey=/k"},
		{"PASSWORD=S3cret", "PASSWORD=xxxxx"},
		{"host=db1 password=", "host=db1 password=xxxxx"},
		{"host=db1 password='S3cret", "host=db1 (rest not shown: not a valid conninfo)"},
		{"host=db1 S3cret", "host=db1 (rest not shown: not a valid conninfo)"},
		{"  host=db1  ", "  host=db1  "},
		{"postgresql://rep:S3cret@db1:5432/postgres", "postgresql://rep:xxxxx@db1:5432/postgres"},
		{"postgres://rep:S3cret@db1,db2/postgres?sslmode=require", "postgres://rep:xxxxx@db1,db2/postgres?sslmode=require"},
		{"postgresql://rep:S3/c@ret@db1/x", "postgresql://rep:xxxxx@db1/x"},
		{"postgresql://rep@db1/x?password=S3cret&port=5432", "postgresql://rep@db1/x?password=xxxxx&port=5432"},
		{"postgresql://db1?sslpassword=S3cret", "postgresql://db1?sslpassword=xxxxx"},
		{"postgresql://db1?pass%77ord=S3cret", "postgresql://db1?pass%77ord=xxxxx"},
		{"POSTGRESQL://rep:S3cret@db1", "POSTGRESQL://rep:xxxxx@db1"},
		{"postgresql://db1", "postgresql://db1"},
	} {
		if got := Conninfo(c.in); got != c.want {
			t.Errorf("Conninfo(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"cannot parse `host=h password = 'S3 cret' port=x`: invalid port", "cannot parse `host=h password = xxxxx port=x`: invalid port"},
		{"cannot parse `host=h password=S3cret`: x", "cannot parse `host=h password=xxxxx x"},
		{"cannot parse `postgresql://u:S3cret@h:x/db`: invalid port", "cannot parse `postgresql://u:xxxxx@h:x/db`: invalid port"},
		{"dial postgresql://u@h/db?password=S3cret&port=x failed", "dial postgresql://u@h/db?password=xxxxx failed"},
		{"check user and password in primary_conninfo", "check user and password in primary_conninfo"},
		{"Password='a\\'b' rest", "Password=xxxxx rest"},
		{"sslpassword = S3cret", "sslpassword = xxxxx"},
		{"cannot parse `postgres://\n:S3cret@`: x", "cannot parse `postgres://\n:xxxxx@`: x"},
		{"postgres://u:S3\ncret@h", "postgres://u:xxxxx@h"},
	} {
		if got := Text(c.in); got != c.want {
			t.Errorf("Text(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzConninfo: whatever pgconn (and so the worker) reads as the password of
// a conninfo never survives Conninfo or Text.
func FuzzConninfo(f *testing.F) {
	for _, s := range []string{
		"host=db1 password=S3cret", "password = 'S3 cret'", `password='S3\'cret'`, `password=S3\ cret`,
		"postgresql://u:S3cret@h/db", "postgresql://u@h/db?password=S3cret", "sslpassword=S3cret",
		"host=h password=S3cret port=x", "postgres://u:S3%40cret@h",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		red, text := Conninfo(s), Text(s)
		// pgconn reads the files these name while parsing (/dev/zero never ends).
		low := strings.ToLower(s)
		for _, k := range []string{"sslkey", "sslcert", "sslrootcert", "sslcrl", "service", "passfile", "%"} {
			if strings.Contains(low, k) {
				return
			}
		}
		cfg, err := pgconn.ParseConfig(s)
		if err != nil || len(cfg.Password) < 3 {
			return
		}
		p := cfg.Password
		other := strings.Join([]string{cfg.User, cfg.Host, cfg.Database, Mask, "(rest not shown: not a valid conninfo)", "postgresql://", "postgres://", "password", "sslpassword"}, "\x00")
		for k, v := range cfg.RuntimeParams {
			other += "\x00" + k + "\x00" + v
		}
		for _, fb := range cfg.Fallbacks {
			other += "\x00" + fb.Host
		}
		if strings.Contains(other, p) || strings.Contains(strings.ToLower(other), strings.ToLower(p)) {
			return // the same text stands elsewhere in the conninfo
		}
		if strings.Contains(red, p) {
			t.Errorf("Conninfo(%q) = %q: still holds the password %q", s, red, p)
		}
		if strings.Contains(text, p) {
			t.Errorf("Text(%q) = %q: still holds the password %q", s, text, p)
		}
	})
}
