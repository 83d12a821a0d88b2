package resume

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/pg-standby/pg-standby/internal/wal"
)

func openDir(t *testing.T) (*os.File, string) {
	t.Helper()
	dir := t.TempDir()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, dir
}

func complete(path string, size int64, lsn wal.LSN, tli uint32) Record {
	return Record{Kind: Complete, Path: path, Size: size, StartLSN: lsn, Timeline: tli}
}

func TestJournalReplay(t *testing.T) {
	d, _ := openDir(t)
	j, got, err := Open(d, Name)
	if err != nil || len(got) != 0 {
		t.Fatalf("Open: %v, %v", got, err)
	}
	// Attempt 1 (0/3000000, tli 1) completes a, b, c; attempt 2
	// (0/5000000, tli 2) rewrites a and reconstructs b (forget, then complete).
	// Unsynced records read back as any other, in order with the synced ones.
	must(t, j.Append(complete("base/5/a", 8192, 0x3000000, 1), complete("base/5/b", 16384, 0x3000000, 1), complete("global/c", 10, 0x3000000, 1)))
	must(t, j.AppendUnsynced(complete("base/5/a", 24576, 0x5000000, 2)))
	must(t, j.Forget("base/5/b"))
	must(t, j.Forget("global/c"))
	must(t, j.Append(complete("base/5/b", 8192, 0x5000000, 2)))
	must(t, j.Close())

	e, err := Load(d, Name)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Entry{
		"base/5/a": {Size: 24576, StartLSN: 0x3000000, Timeline: 1}, // earliest start kept, size updated
		"base/5/b": {Size: 8192, StartLSN: 0x5000000, Timeline: 2},  // forgotten, then completed again
	}
	if len(e) != len(want) || e["base/5/a"] != want["base/5/a"] || e["base/5/b"] != want["base/5/b"] {
		t.Fatalf("Load = %+v, want %+v", e, want)
	}
	if lsn, tli, ok := Earliest(e); !ok || lsn != 0x3000000 || tli != 1 {
		t.Fatalf("Earliest = %v %d %v", lsn, tli, ok)
	}
}

// Written entries carry the boot of the Boot record before them, and a
// Complete record of the same file makes it durable again.
func TestJournalWritten(t *testing.T) {
	d, _ := openDir(t)
	j, _, err := Open(d, Name)
	if err != nil {
		t.Fatal(err)
	}
	written := func(p string, size int64) Record {
		return Record{Kind: Written, Path: p, Size: size, StartLSN: 0x3000000, Timeline: 1}
	}
	must(t, j.AppendUnsynced(written("base/5/old", 1))) // no Boot record yet
	must(t, j.Append(Record{Kind: Boot, Path: "boot-one-0000000000"}))
	must(t, j.AppendUnsynced(written("base/5/a", 8192), written("base/5/b", 8192), written("base/5/c", 8192)))
	must(t, j.AppendUnsynced(complete("base/5/b", 8192, 0x3000000, 1)))
	must(t, j.Forget("base/5/c"))
	must(t, j.Append(Record{Kind: Boot, Path: "boot-two-0000000000"}))
	must(t, j.AppendUnsynced(written("base/5/a", 16384)))
	must(t, j.Close())

	e, err := Load(d, Name)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Entry{
		"base/5/old": {Size: 1, StartLSN: 0x3000000, Timeline: 1, Boot: "?"},
		"base/5/a":   {Size: 16384, StartLSN: 0x3000000, Timeline: 1, Boot: "boot-two-0000000000"},
		"base/5/b":   {Size: 8192, StartLSN: 0x3000000, Timeline: 1},
	}
	if len(e) != len(want) {
		t.Fatalf("Load = %+v, want %+v", e, want)
	}
	for p, w := range want {
		if e[p] != w {
			t.Errorf("Load[%s] = %+v, want %+v", p, e[p], w)
		}
	}
	if _, err := encode(nil, Record{Kind: 5, Path: "x"}); err == nil {
		t.Error("encode took kind 5")
	}
	if id := BootID(); len(id) != 36 {
		t.Errorf("BootID() = %q: want the kernel's 36-character UUID", id)
	}
}

func TestJournalTornAndBounds(t *testing.T) {
	d, dir := openDir(t)
	j, _, err := Open(d, Name)
	must(t, err)
	must(t, j.Append(complete("a", 1, 1, 1), complete("b", 2, 1, 1)))
	must(t, j.Close())
	full, err := os.ReadFile(filepath.Join(dir, Name))
	must(t, err)
	lastLen := 8 + fixedBody + 1

	// A record cut anywhere is ignored with everything after it.
	for cut := 1; cut < lastLen; cut++ {
		must(t, os.WriteFile(filepath.Join(dir, Name), full[:len(full)-cut], 0o600))
		e, err := Load(d, Name)
		if err != nil || len(e) != 1 || e["a"].Size != 1 {
			t.Fatalf("cut %d: %+v, %v", cut, e, err)
		}
	}
	// A flipped bit in the last record's body: CRC mismatch.
	bad := append([]byte{}, full...)
	bad[len(bad)-1] ^= 1
	must(t, os.WriteFile(filepath.Join(dir, Name), bad, 0o600))
	if e, _ := Load(d, Name); len(e) != 1 {
		t.Fatalf("corrupt record accepted: %+v", e)
	}
	// A length beyond the bound is not read (no huge allocation).
	huge := append([]byte{}, full[:len(full)-lastLen]...)
	huge = binary.LittleEndian.AppendUint32(huge, 1<<31)
	huge = append(huge, make([]byte, 64)...)
	must(t, os.WriteFile(filepath.Join(dir, Name), huge, 0o600))
	if e, _ := Load(d, Name); len(e) != 1 {
		t.Fatalf("oversized record accepted: %+v", e)
	}
	// Open cuts the torn tail so later records are read again.
	j, e, err := Open(d, Name)
	must(t, err)
	if len(e) != 1 {
		t.Fatalf("Open after tear: %+v", e)
	}
	must(t, j.Append(complete("c", 3, 2, 1)))
	must(t, j.Close())
	if e, _ := Load(d, Name); len(e) != 2 || e["c"].Size != 3 {
		t.Fatalf("after reopen: %+v", e)
	}
	// Records the journal cannot represent are refused.
	j, _, err = Open(d, Name)
	must(t, err)
	defer j.Close()
	if err := j.Append(Record{Kind: Complete, Path: string(make([]byte, MaxPath+1))}); err == nil {
		t.Fatal("appended an over-long path")
	}
	if err := j.Append(Record{Kind: 9, Path: "x"}); err == nil {
		t.Fatal("appended an unknown kind")
	}
}

func TestJournalRefusesLinks(t *testing.T) {
	d, dir := openDir(t)
	target := filepath.Join(t.TempDir(), "elsewhere")
	must(t, os.WriteFile(target, nil, 0o600))
	must(t, os.Symlink(target, filepath.Join(dir, Name)))
	if _, _, err := Open(d, Name); err == nil {
		t.Fatal("opened a journal through a symlink")
	}
	must(t, os.Remove(filepath.Join(dir, Name)))
	must(t, os.Link(target, filepath.Join(dir, Name)))
	if _, err := Load(d, Name); err == nil {
		t.Fatal("loaded a hard-linked journal")
	}
	must(t, os.Remove(filepath.Join(dir, Name)))
	must(t, os.WriteFile(filepath.Join(dir, Name), []byte("not a journal at all"), 0o600))
	if _, err := Load(d, Name); err == nil {
		t.Fatal("loaded a file with a bad magic")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
