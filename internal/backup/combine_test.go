package backup

import (
	"bytes"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/pg-standby/pg-standby/internal/incremental"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/manifest"
)

// TestCombineResultManifest: the result manifest written during the
// verification pass lists the server's entries in its order, INCREMENTAL.*
// under their names with the size and CRC-32C of the file on disk,
// backup_label as labelFilter wrote it, the rest as the server said; it
// replaces the server's manifest, and no spool is left.
func TestCombineResultManifest(t *testing.T) {
	c := newCombineFixture(t, 50, 5)
	c.respool(t)
	if err := c.finishManifest(); err != nil {
		t.Fatal(err)
	}
	srv, err := manifest.Parse(c.data)
	if err != nil {
		t.Fatal(err)
	}
	data, err := c.t.root.ReadFile(instance.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	got, err := manifest.Parse(data)
	if err != nil {
		t.Fatalf("result manifest: %v\n%s", err, data)
	}
	if got.SystemIdentifier != srv.SystemIdentifier || len(got.Files) != len(srv.Files) || len(got.WALRanges) != 1 || got.WALRanges[0] != srv.WALRanges[0] {
		t.Fatalf("result manifest %+v\nfor the server's %+v", got, srv)
	}
	for i, f := range got.Files {
		s := srv.Files[i]
		name, inc := incremental.TargetName(s.Path)
		want := s
		switch {
		case s.Path == labelName:
			want = manifest.File{Path: labelName, Size: c.t.inc.label.Size, Algorithm: manifest.CRC32C, Checksum: c.t.inc.label.Checksum}
		case inc: // size only, as pg_combinebackup --manifest-checksums=NONE
			fi, err := c.t.root.Stat(name)
			if err != nil {
				t.Fatal(err)
			}
			want = manifest.File{Path: name, Size: fi.Size()}
		}
		if f.Path != want.Path || f.Size != want.Size || f.Algorithm != want.Algorithm || !bytes.Equal(f.Checksum, want.Checksum) {
			t.Errorf("entry %d: %+v, want %+v (the server's %s)", i, f, want, s.Path)
		}
		if _, ok := c.t.res.Files[f.Path]; !ok {
			t.Errorf("%s is not among the files seen under its result name", f.Path)
		}
	}
	label, _ := c.t.root.ReadFile(labelName)
	if strings.Contains(string(label), "INCREMENTAL") {
		t.Errorf("backup_label still says %q", label)
	}
	for _, spool := range []string{manifestSpool, resultSpool} {
		if _, err := c.t.root.Lstat(spool); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left behind: %v", spool, err)
		}
	}
}

// TestCombineRefuses: a file sent both whole and as an increment, or no
// backup_label, is the primary breaking the protocol.
func TestCombineRefuses(t *testing.T) {
	c := newCombineFixture(t, 10, 2)
	c.respool(t)
	if _, err := c.b.verifyManifest(c.t); err != nil {
		t.Fatal(err)
	}
	c.t.res.Files["base/5/100000"] = manifest.Observed{}
	if err := c.b.commitManifest(c.t); err == nil || KindOf(err) != Protocol {
		t.Errorf("a file sent whole and as an increment: %v (%v), want a protocol violation", err, KindOf(err))
	}

	c = newCombineFixture(t, 10, 2)
	c.t.inc.label = nil
	c.respool(t)
	if _, err := c.b.verifyManifest(c.t); err == nil || KindOf(err) != Protocol {
		t.Errorf("no backup_label: %v (%v), want a protocol violation", err, KindOf(err))
	}
}
