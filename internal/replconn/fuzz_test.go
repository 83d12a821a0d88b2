package replconn

import (
	"strings"
	"testing"
)

// FuzzParseConninfo: whatever primary_conninfo holds, ParseConninfo returns
// an error or a replication configuration with an application name; it
// never panics.
func FuzzParseConninfo(f *testing.F) {
	for _, s := range []string{
		"host=db1.example.com user=replicator application_name=standby1",
		"host=127.0.0.1 port=5432 password='p a''ss\\\\' sslmode=disable",
		"postgresql://replicator:secret@db1:5433/postgres?application_name=x",
		"host=a,b port=5432,5433 target_session_attrs=read-write",
		"host=/var/run/postgresql",
		"port=notaport",
		"host='unterminated",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Keys naming files (certificates, service and password files) make
		// pgconn read them: /dev/zero would never end.
		for _, k := range []string{"ssl", "service", "passfile", "/dev/"} {
			if strings.Contains(s, k) {
				return
			}
		}
		cfg, err := ParseConninfo(s)
		if err != nil {
			return
		}
		if cfg.RuntimeParams["replication"] != "true" || cfg.RuntimeParams["application_name"] == "" {
			t.Fatalf("ParseConninfo(%q): runtime params %v", s, cfg.RuntimeParams)
		}
		if Address(cfg) == "" {
			t.Fatalf("ParseConninfo(%q): empty address", s)
		}
	})
}
