package instance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pg-standby/pg-standby/internal/pgconf"
)

func loadConf(t *testing.T, body string) (*pgconf.Config, string) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "postgresql.conf")
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	conf, err := pgconf.Load(file, dir)
	if err != nil {
		t.Fatal(err)
	}
	return conf, file
}

// TestSettingsFill: stored settings fill what the caller left unset, and
// never override what it set.
func TestSettingsFill(t *testing.T) {
	conf, _ := loadConf(t, `pg_standby.checkpoint = spread
pg_standby.max_rate = 2048
pg_standby.create_slot = on
pg_standby.direct_io = off
pg_standby.compression = 'zstd:level=3'
pg_standby.manifest_checksums = SHA256
pg_standby.tablespace_mapping = '/old=/new'
`)
	var s Settings
	if err := s.Fill(conf); err != nil {
		t.Fatal(err)
	}
	if s.Checkpoint != "spread" || s.MaxRateKB != 2048 || !s.CreateSlot || s.DirectIO == nil || *s.DirectIO ||
		s.Compression != "zstd:level=3" || s.ManifestChecksums != "SHA256" || s.TablespaceMapping["/old"] != "/new" {
		t.Errorf("Fill from the stored settings: %+v", s)
	}
	on := true
	given := Settings{Checkpoint: "fast", MaxRateKB: 64, Compression: "gzip", DirectIO: &on, ManifestChecksums: "CRC32C", TablespaceMapping: map[string]string{"/a": "/b"}}
	if err := given.Fill(conf); err != nil {
		t.Fatal(err)
	}
	if given.Checkpoint != "fast" || given.MaxRateKB != 64 || given.Compression != "gzip" || !*given.DirectIO ||
		given.ManifestChecksums != "CRC32C" || len(given.TablespaceMapping) != 1 || given.TablespaceMapping["/a"] != "/b" {
		t.Errorf("Fill over given options changed them: %+v", given)
	}
}

// TestSettingsFillErrors: a bad stored value is named with its file and
// line, in the words run has always used.
func TestSettingsFillErrors(t *testing.T) {
	for _, tc := range []struct{ conf, want string }{
		{"pg_standby.checkpoint = soon", `pg_standby.checkpoint in %s line 1: "soon" is not fast or spread`},
		{"\npg_standby.max_rate = fast", `pg_standby.max_rate in %s line 2: "fast" is not a number of kB/s`},
		{"pg_standby.create_slot = maybe", `pg_standby.create_slot in %s line 1: "maybe" is not a boolean`},
		{"pg_standby.direct_io = sometimes", `pg_standby.direct_io in %s line 1: "sometimes" is not a boolean`},
	} {
		conf, file := loadConf(t, tc.conf+"\n")
		var s Settings
		err := s.Fill(conf)
		if want := strings.Replace(tc.want, "%s", file, 1); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Fill(%q) = %v, want %s", tc.conf, err, want)
		}
	}
}

func TestSettingsChecks(t *testing.T) {
	for _, m := range []string{"fast", "spread"} {
		if err := CheckCheckpoint(m); err != nil {
			t.Errorf("CheckCheckpoint(%q) = %v", m, err)
		}
	}
	if err := CheckCheckpoint("Fast"); err == nil || err.Error() != "want fast or spread" {
		t.Errorf("CheckCheckpoint(Fast) = %v", err)
	}
	for kb, ok := range map[int64]bool{31: false, 32: true, 1048576: true, 1048577: false, -1: false} {
		if err := CheckMaxRate(kb); (err == nil) != ok {
			t.Errorf("CheckMaxRate(%d) = %v, want ok %v", kb, err, ok)
		}
	}
	for v, want := range map[string][2]string{"": {}, "none": {}, "gzip": {"gzip", ""}, "zstd:level=3": {"zstd", "level=3"}, "lz4:": {"lz4", ""}} {
		if m, d, err := SplitCompression(v); err != nil || m != want[0] || d != want[1] {
			t.Errorf("SplitCompression(%q) = %q, %q, %v; want %q, %q", v, m, d, err, want[0], want[1])
		}
	}
	for _, v := range []string{"brotli", "GZIP", "none2:x"} {
		if _, _, err := SplitCompression(v); err == nil {
			t.Errorf("SplitCompression(%q) accepted", v)
		}
	}
}
