package instance

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestResyncRecord: StartResync writes both files; the record reads back
// equal; broken records are refused, not half-read.
func TestResyncRecord(t *testing.T) {
	dir := t.TempDir()
	in, err := New(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	want := Resync{Mode: ResyncBlock, SystemID: 7714581647432037426, Prior: 0x30128D8, PriorTLI: 1, State: DBShutdownedInRecovery,
		Checkpoint: 0x3012910, MinRecovery: 0x30129B0, MinRecoveryTLI: 1, Created: time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)}
	if err := in.StartResync(&want, []string{"postgresql.conf", "conf.d/x.conf"}); err != nil {
		t.Fatal(err)
	}
	root, _ := os.OpenRoot(dir)
	defer root.Close()
	got, ok, err := ReadResync(root)
	if err != nil || !ok || *got != want {
		t.Fatalf("read back %+v, %v, %v; want %+v", got, ok, err, want)
	}
	p, err := ReadPending(root)
	if err != nil || !p.Recorded || strings.Join(p.Keep, ",") != "postgresql.conf,conf.d/x.conf" || p.Written {
		t.Fatalf("basebackup.signal %+v, %v; want recorded, keeping the configuration, nothing written", p, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("left %d files, want 2 (no temporary names)", len(ents))
	}
	good := want.encode()
	for name, data := range map[string]string{
		"no prior-lsn":  strings.Replace(good, "prior-lsn 0/30128D8\n", "", 1),
		"twice":         good + "mode full\n",
		"bad mode":      strings.Replace(good, "mode block", "mode partial", 1),
		"newer version": strings.Replace(good, "version 1", "version 2", 1),
		"unknown entry": good + "extra 1\n",
		"bad lsn":       strings.Replace(good, "prior-lsn 0/30128D8", "prior-lsn x", 1),
	} {
		if _, err := ParseResync([]byte(data)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	os.WriteFile(filepath.Join(dir, ResyncFile), []byte(strings.Repeat("#", maxResyncRecord+1)), 0o600)
	if _, _, err := ReadResync(root); err == nil {
		t.Error("an oversized record was read")
	}
	os.Remove(filepath.Join(dir, ResyncFile))
	if _, ok, err := ReadResync(root); ok || err != nil {
		t.Errorf("no record: ok %v, %v", ok, err)
	}
}

// TestStartResyncFollowsNoLink: a link planted at the record's name is
// replaced, not written through; a data directory reached through a link
// is refused.
func TestStartResyncFollowsNoLink(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "data")
	os.Mkdir(dir, 0o700)
	victim := filepath.Join(base, "victim")
	os.WriteFile(victim, []byte("keep"), 0o600)
	os.Symlink(victim, filepath.Join(dir, ResyncFile))
	os.Symlink(victim, filepath.Join(dir, BackupSignal))
	in, _ := New(dir, "")
	r := &Resync{Mode: ResyncFull, Prior: 1, PriorTLI: 1}
	if err := in.StartResync(r, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("the link's target was written: %q", b)
	}
	for _, name := range []string{ResyncFile, BackupSignal} {
		if fi, err := os.Lstat(filepath.Join(dir, name)); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s: %v, %v; want a regular file in place of the link", name, fi, err)
		}
	}
	link := filepath.Join(base, "link")
	os.Symlink(dir, link)
	in, _ = New(link, "")
	var le *LinkError
	if err := in.StartResync(r, nil); !errors.As(err, &le) {
		t.Errorf("data directory through a link: %v, want a LinkError", err)
	}
}
