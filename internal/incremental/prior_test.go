package incremental

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pg-standby/pg-standby/internal/resume"
)

// TestPriorFiles: relation files of the data directory and a tablespace,
// at the prior start; nothing else, no link followed.
func TestPriorFiles(t *testing.T) {
	data, ts := t.TempDir(), t.TempDir()
	write := func(dir, name string, size int) {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(data, "global/1262", 8192)
	write(data, "global/pg_control", 8192)
	write(data, "base/5/16384", 16384)
	write(data, "base/5/16384.1", 8192)
	write(data, "base/5/16384_fsm", 24576)
	write(data, "base/5/16384_vm", 8192)
	write(data, "base/5/PG_VERSION", 3)
	write(data, "postgresql.conf", 10)
	write(ts, "PG_17_202406281/5/16500", 8192)
	os.Symlink(filepath.Join(ts, "PG_17_202406281/5/16500"), filepath.Join(data, "base/5/16501"))
	dr, _ := os.OpenRoot(data)
	tr, _ := os.OpenRoot(ts)
	defer dr.Close()
	defer tr.Close()
	recs, err := PriorFiles(dr, map[string]*os.Root{"16400": tr}, 0x3000028, 2)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		if r.Kind != resume.Complete || r.StartLSN != 0x3000028 || r.Timeline != 2 {
			t.Errorf("%+v: want Complete at 0/3000028 on timeline 2", r)
		}
		got = append(got, r.Path)
	}
	slices.Sort(got)
	want := []string{"base/5/16384", "base/5/16384.1", "global/1262", "pg_tblspc/16400/PG_17_202406281/5/16500"}
	if !slices.Equal(got, want) {
		t.Errorf("prior files %q, want %q", got, want)
	}
	if _, err := PriorFiles(dr, map[string]*os.Root{"../x": tr}, 0, 1); err == nil {
		t.Error("a tablespace named ../x was walked")
	}
}
