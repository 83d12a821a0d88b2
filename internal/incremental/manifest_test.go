package incremental

import (
	"strings"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/manifest"
)

func TestRenderManifestParses(t *testing.T) {
	m := &Manifest{
		SystemID: 7412345678901234567,
		Files: []ManifestFile{
			{Path: "base/5/16384", Size: 8192},
			{Path: "global/pg_control", Size: 8192, ModTime: time.Unix(1700000000, 0), Algorithm: manifest.CRC32C, Checksum: []byte{1, 2, 3, 4}},
			{Path: "base/5/odd\xff", Size: 0},
			{Path: `we"ird<&>`, Size: 1},
		},
		WALRanges: []manifest.WALRange{{Timeline: 1, Start: 0x2000028, End: 0x2000028}},
	}
	data, err := RenderManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := manifest.Parse(data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if got.Version != 2 || got.SystemIdentifier != m.SystemID || len(got.Files) != 4 || got.Files[2].Path != "base/5/odd\xff" || got.Files[3].Path != `we"ird<&>` || got.Files[1].Algorithm != manifest.CRC32C {
		t.Fatalf("parsed back %+v", got)
	}
	if !strings.Contains(string(data), `"Last-Modified": "2023-11-14 22:13:20 GMT"`) {
		t.Fatalf("no Last-Modified in\n%s", data)
	}
	m.Files = append(m.Files, m.Files[0])
	if _, err := RenderManifest(m); err == nil {
		t.Fatal("rendered a duplicate path")
	}
}

func TestStripIncrementalLabel(t *testing.T) {
	in := "START WAL LOCATION: 0/4000028 (file 000000010000000000000004)\nCHECKPOINT LOCATION: 0/4000080\n" +
		"BACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-12-02 05:00:00 UTC\nLABEL: x\nSTART TIMELINE: 1\n" +
		"INCREMENTAL FROM LSN: 0/2000028\nINCREMENTAL FROM TLI: 1\n"
	got, err := StripIncrementalLabel([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(in, "INCREMENTAL")[0]
	if string(got) != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if _, err := StripIncrementalLabel(make([]byte, MaxBackupLabel+1)); err == nil {
		t.Fatal("accepted an oversized backup_label")
	}
}

func TestListable(t *testing.T) {
	for p, want := range map[string]bool{
		"base/5/16384": true, "base/5/16384.3": true, "base/5/16384_init": true, "global/1262": true,
		"pg_tblspc/16400/PG_17_202406281/5/16401": true,
		"base/5/16384_vm":                         false, "base/5/16384_fsm": false, "base/5/16384_vm.1": false,
		"global/pg_control": false, "base/5/PG_VERSION": false, "base/5/pg_filenode.map": false,
		"pg_xact/0000": false, "base/5/016384": false, "base/5/16384.": false, "base/05/16384": false,
		"base/5/sub/16384": false, "backup_label": false, "base/5/INCREMENTAL.16384": false,
	} {
		if got := Listable(p); got != want {
			t.Errorf("Listable(%q) = %v, want %v", p, got, want)
		}
	}
}
