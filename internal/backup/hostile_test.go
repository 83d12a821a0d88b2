package backup_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/basebackup"
	fp "github.com/pg-standby/pg-standby/internal/fakeprimary"
	"github.com/pg-standby/pg-standby/internal/oracle"
	"github.com/pg-standby/pg-standby/internal/pgconf"
)

// goodFiles is a tiny but complete data directory as a primary sends it.
var goodFiles = []fp.ManifestFile{
	{Path: "PG_VERSION", Data: "15\n"},
	{Path: "backup_label", Data: "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"},
	{Path: "global/pg_control", Data: strings.Repeat("c", 8192)},
	{Path: "base/1/1259", Data: strings.Repeat("r", 20000)},
}

func goodBase() []fp.Entry {
	return []fp.Entry{
		{Name: "PG_VERSION", Data: goodFiles[0].Data},
		{Name: "backup_label", Data: goodFiles[1].Data},
		{Name: "global/", Type: '5'},
		{Name: "global/pg_control", Data: goodFiles[2].Data},
		{Name: "base/", Type: '5'},
		{Name: "base/1/", Type: '5'},
		{Name: "base/1/1259", Data: goodFiles[3].Data},
		{Name: "pg_wal/", Type: '5'},
		{Name: "pg_tblspc/", Type: '5'},
	}
}

func goodManifest() []byte {
	return fp.RenderManifest(goodFiles, 1, fp.DefaultStart, fp.DefaultEnd)
}

// stream joins the messages of a COPY stream.
func stream(parts ...[][]byte) [][]byte {
	var out [][]byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func msgs(m ...[]byte) [][]byte { return m }

// hostileLayout is a parent directory holding the instance (data), a place
// for tablespace locations (ts) and a neighbour that must stay untouched
// (outside, with a file in it).
type hostileLayout struct {
	parent, data, ts, outside string
}

func newHostileLayout(t *testing.T, conninfo string) hostileLayout {
	t.Helper()
	parent := t.TempDir()
	l := hostileLayout{parent: parent, data: filepath.Join(parent, "data"), ts: filepath.Join(parent, "ts"), outside: filepath.Join(parent, "outside")}
	for _, d := range []string{l.data, l.ts, l.outside} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(l.outside, "victim"), "must not change")
	writeFile(t, filepath.Join(l.data, "postgresql.conf"), "primary_conninfo = "+pgconf.Quote(conninfo)+"\n")
	writeFile(t, filepath.Join(l.data, "basebackup.signal"), "")
	return l
}

// snapshotExcept is snapshot of dir without the subtrees skip.
func snapshotExcept(t *testing.T, dir string, skip ...string) string {
	t.Helper()
	return oracle.SnapshotPending(t, dir, skip...)
}

// TestFakePrimaryGoodStream is the control for TestHostilePrimary: the
// unmodified script makes a backup that passes every check, so each hostile
// case fails because of what it changed.
func TestFakePrimaryGoodStream(t *testing.T) {
	srv := fp.Start(t, fp.Script{Stream: stream(fp.Archive("base.tar", "", fp.Tar(goodBase(), false), 4096), fp.Manifest(goodManifest()))})
	l := newHostileLayout(t, srv.ConnString())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := backup.Run(ctx, backup.Options{DataDir: l.data, Log: testLogger(t)})
	if err != nil {
		t.Fatalf("backup from the well-behaved fake primary: %v", err)
	}
	if res.Files != len(goodFiles) {
		t.Errorf("files = %d, want %d", res.Files, len(goodFiles))
	}
	for _, name := range []string{"global/pg_control", "standby.signal", "base/1/1259", "backup_manifest", "pg_wal/000000010000000000000002"} {
		if !exists(filepath.Join(l.data, name)) {
			t.Errorf("%s missing after the backup", name)
		}
	}
	if exists(filepath.Join(l.data, "basebackup.signal")) {
		t.Errorf("basebackup.signal left after a good backup")
	}
}

// TestHostilePrimary: a server that sends what no PostgreSQL sends. Every
// case must fail quickly, touch nothing outside the data directory (and the
// tablespace locations it was told), leave the instance unstartable
// (no pg_control) and resumable (basebackup.signal), and not balloon memory.
func TestHostilePrimary(t *testing.T) {
	tsOID := uint32(16385)
	good := fp.Tar(goodBase(), false)
	man := fp.Manifest(goodManifest())
	base := func(extra ...fp.Entry) [][]byte {
		return fp.Archive("base.tar", "", fp.Tar(append(goodBase(), extra...), false), 4096)
	}
	file := func(name string) fp.Entry { return fp.Entry{Name: name, Data: "evil"} }
	withTS := func(l hostileLayout) []basebackup.Tablespace {
		return []basebackup.Tablespace{{OID: tsOID, Location: filepath.Join(l.ts, "loc"), SizeKB: 1}}
	}
	// header announces a protocol message of n body bytes ('d' CopyData).
	header := func(typ byte, n int) []byte {
		n += 4
		return []byte{typ, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	}

	cases := []struct {
		name   string
		script func(l hostileLayout) fp.Script
		want   string
	}{
		{"dot-dot member", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(base(file("../outside/evil")), man)}
		}, "path leaves the directory"},
		{"dot-dot inside a member name", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(base(file("base/../../outside/victim")), man)}
		}, "path leaves the directory"},
		{"absolute path", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(base(file(filepath.Join(l.outside, "evil"))), man)}
		}, "absolute path"},
		{"symlink outside then a file through it", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(base(fp.Entry{Name: "escape", Type: '2', Linkname: l.outside}, file("escape/victim")), man)}
		}, "only pg_tblspc/<oid> links to known tablespaces are allowed"},
		{"relative symlink outside then a file through it", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(base(fp.Entry{Name: "base/escape", Type: '2', Linkname: "../../outside"}, file("base/escape/victim")), man)}
		}, "only pg_tblspc/<oid> links"},
		{"symlink to an unlisted tablespace", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(base(fp.Entry{Name: "pg_tblspc/16999", Type: '2', Linkname: l.outside}, file("pg_tblspc/16999/victim")), man)}
		}, "only pg_tblspc/<oid> links"},
		{"file written through a tablespace link from the base archive", func(l hostileLayout) fp.Script {
			return fp.Script{Tablespaces: withTS(l), Stream: stream(
				fp.Archive("16385.tar", filepath.Join(l.ts, "loc"), fp.Tar(nil, false), 4096),
				base(fp.Entry{Name: "pg_tblspc/16385", Type: '2', Linkname: l.outside}, file("pg_tblspc/16385/../../outside/victim")), man)}
		}, "path leaves the directory"},
		{"file through the tablespace link (absolute target)", func(l hostileLayout) fp.Script {
			return fp.Script{Tablespaces: withTS(l), Stream: stream(
				fp.Archive("16385.tar", filepath.Join(l.ts, "loc"), fp.Tar(nil, false), 4096),
				base(fp.Entry{Name: "pg_tblspc/16385", Type: '2', Linkname: l.outside}, file("pg_tblspc/16385/evil")), man)}
		}, "lies below the tablespace link pg_tblspc/16385"},
		{"symlink inside a tablespace archive", func(l hostileLayout) fp.Script {
			return fp.Script{Tablespaces: withTS(l), Stream: stream(
				fp.Archive("16385.tar", filepath.Join(l.ts, "loc"), fp.Tar([]fp.Entry{{Name: "PG_15_1", Type: '2', Linkname: l.outside}, file("PG_15_1/victim")}, false), 4096),
				fp.Archive("base.tar", "", good, 4096), man)}
		}, "only pg_tblspc/<oid> links"},
		{"tablespace location holding foreign files", func(l hostileLayout) fp.Script {
			return fp.Script{Tablespaces: []basebackup.Tablespace{{OID: tsOID, Location: l.outside, SizeKB: 1}},
				Stream: stream(fp.Archive("16385.tar", l.outside, fp.Tar([]fp.Entry{file("victim")}, false), 4096), fp.Archive("base.tar", "", good, 4096), man)}
		}, "pg-standby never deletes files it did not write"},
		{"tablespace location inside the data directory", func(l hostileLayout) fp.Script {
			return fp.Script{Tablespaces: []basebackup.Tablespace{{OID: tsOID, Location: filepath.Join(l.data, "global"), SizeKB: 1}},
				Stream: stream(fp.Archive("base.tar", "", good, 4096), man)}
		}, "overlaps the data directory"},
		{"relative tablespace location", func(l hostileLayout) fp.Script {
			return fp.Script{Tablespaces: []basebackup.Tablespace{{OID: tsOID, Location: "../outside", SizeKB: 1}},
				Stream: stream(fp.Archive("base.tar", "", good, 4096), man)}
		}, "is not an absolute path"},
		{"hard link", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(base(fp.Entry{Name: "global/pg_filenode.map", Type: '1', Linkname: filepath.Join(l.outside, "victim")}), man)}
		}, "not a file, directory or symbolic link"},
		{"character device", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(base(fp.Entry{Name: "dev", Type: '3'}), man)}
		}, "not a file, directory or symbolic link"},
		{"block device", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(base(fp.Entry{Name: "disk", Type: '4'}), man)}
		}, "not a file, directory or symbolic link"},
		{"fifo", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(base(fp.Entry{Name: "fifo", Type: '6'}), man)}
		}, "not a file, directory or symbolic link"},
		{"huge size, then the archive ends", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(base(fp.Entry{Name: "big", Data: "tiny", Size: 1<<33 - 1}), man)}
		}, "truncated inside member \"big\""},
		{"base-256 size too large", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(base(fp.Entry{Name: "big", SizeField: []byte{0x80, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}), man)}
		}, "size too large"},
		{"negative size", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(base(fp.Entry{Name: "neg", SizeField: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}}), man)}
		}, "negative size"},
		{"directory with a size", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(base(fp.Entry{Name: "d/", Type: '5', Size: 512}), man)}
		}, "a directory or link with size"},
		{"member longer than its header says", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(base(fp.Entry{Name: "long", Data: strings.Repeat("x", 600), Size: 3}), man)}
		}, "checksum mismatch"},
		{"archive without end marker", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(fp.Archive("base.tar", "", fp.Tar(goodBase(), true), 4096), man)}
		}, "no end-of-archive marker"},
		{"archive cut inside a member", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(fp.Archive("base.tar", "", good[:512*9+100], 4096), man)}
		}, "truncated inside member"},
		{"connection cut inside the archive", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: fp.Archive("base.tar", "", good[:512*9+100], 4096), Cut: true}
		}, "receive base backup stream"},
		{"no manifest", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: fp.Archive("base.tar", "", good, 4096)}
		}, "the server sent no manifest"},
		{"manifest with a wrong checksum for a file", func(l hostileLayout) fp.Script {
			files := append([]fp.ManifestFile(nil), goodFiles...)
			files[3].Data = strings.Repeat("R", len(files[3].Data))
			return fp.Script{Stream: stream(fp.Archive("base.tar", "", good, 4096), fp.Manifest(fp.RenderManifest(files, 1, fp.DefaultStart, fp.DefaultEnd)))}
		}, "1 wrong checksum"},
		{"manifest missing a file that was sent", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(fp.Archive("base.tar", "", good, 4096), fp.Manifest(fp.RenderManifest(goodFiles[1:], 1, fp.DefaultStart, fp.DefaultEnd)))}
		}, "1 not in manifest"},
		{"manifest with a bad signature", func(l hostileLayout) fp.Script {
			doc := goodManifest()
			doc[len(doc)-5] ^= 1
			return fp.Script{Stream: stream(fp.Archive("base.tar", "", good, 4096), fp.Manifest(doc))}
		}, "manifest"},
		{"manifest for WAL that was not streamed", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(fp.Archive("base.tar", "", good, 4096), fp.Manifest(fp.RenderManifest(goodFiles, 1, fp.DefaultStart, fp.DefaultEnd+0x1000000)))}
		}, "streamed WAL does not cover the backup"},
		{"archive name with a slash", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(fp.Archive("../base.tar", "", good, 4096), man)}
		}, "unexpected archive \"../base.tar\""},
		{"archive for an unlisted tablespace path", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(fp.Archive("16385.tar", l.outside, fp.Tar([]fp.Entry{file("evil")}, false), 4096), fp.Archive("base.tar", "", good, 4096), man)}
		}, "matches no tablespace the server listed"},
		{"tablespace archive name with a slash", func(l hostileLayout) fp.Script {
			return fp.Script{Tablespaces: withTS(l), Stream: stream(fp.Archive("../16385.tar", filepath.Join(l.ts, "loc"), fp.Tar(nil, false), 4096), fp.Archive("base.tar", "", good, 4096), man)}
		}, "matches no tablespace the server listed"},
		{"archive sent twice", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(fp.Archive("base.tar", "", good, 4096), fp.Archive("base.tar", "", good, 4096), man)}
		}, "sent twice"},
		{"manifest before the archives", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(man, fp.Archive("base.tar", "", good, 4096))}
		}, "an archive after the manifest"},
		{"two manifests", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(fp.Archive("base.tar", "", good, 4096), man, msgs(fp.ManifestStart()))}
		}, "a second manifest"},
		{"data before any archive", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(msgs(fp.Data(good[:512])), fp.Archive("base.tar", "", good, 4096), man)}
		}, "archive data before any archive started"},
		{"unknown CopyData tag", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(fp.Archive("base.tar", "", good, 4096), msgs([]byte("xyz")), man)}
		}, "unknown message type"},
		{"empty CopyData", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(msgs([]byte{}), fp.Archive("base.tar", "", good, 4096), man)}
		}, "empty CopyData message"},
		{"progress message too long", func(l hostileLayout) fp.Script {
			return fp.Script{Stream: stream(msgs(append(fp.Progress(5), 0)), fp.Archive("base.tar", "", good, 4096), man)}
		}, "unexpected trailing bytes"},
		{"CopyData announcing 1000 MiB", func(l hostileLayout) fp.Script {
			// Below pgproto3's own 1 GiB limit: only pg-standby's bound stops
			// the allocation before a single byte of the body arrived.
			return fp.Script{Stream: fp.Archive("base.tar", "", good[:1024], 4096), Raw: append(header('d', 1000<<20), 'd')}
		}, "invalid body length: expected at most 16777216"},
		{"CopyData shorter than its contents", func(l hostileLayout) fp.Script {
			// The header announces 5 body bytes; the rest of the payload is
			// then read as further messages.
			raw := append(header('d', 5), fp.Data(good[:2048])...)
			return fp.Script{Stream: msgs(fp.NewArchive("base.tar", "")), Raw: raw}
		}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Each case gets its own server: its script needs the layout's paths.
			srvPort := make(chan *fp.Server, 1)
			var l hostileLayout
			l = newHostileLayout(t, "host=127.0.0.1 port=1") // conninfo fixed below
			srv := fp.Start(t, c.script(l))
			srvPort <- srv
			writeFile(t, filepath.Join(l.data, "postgresql.conf"), "primary_conninfo = "+pgconf.Quote(srv.ConnString())+"\n")
			before := snapshotExcept(t, l.parent, l.data, l.ts)

			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			allocBefore := ms.TotalAlloc
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			began := time.Now()
			_, err := backup.Run(ctx, backup.Options{DataDir: l.data, Log: testLogger(t)})
			took := time.Since(began)
			runtime.ReadMemStats(&ms)
			allocated := ms.TotalAlloc - allocBefore

			if err == nil {
				t.Fatalf("backup from a hostile primary succeeded; want an error containing %q", c.want)
			}
			t.Logf("error (%s, after %s, %d MiB allocated): %v", backup.KindOf(err), took.Round(time.Millisecond), allocated>>20, err)
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
			if ctx.Err() != nil || took > 10*time.Second {
				t.Errorf("failure took %s: a hostile stream must fail at once, not hang", took)
			}
			if allocated > 64<<20 {
				t.Errorf("%d MiB allocated during the attempt: memory not bounded", allocated>>20)
			}
			if after := snapshotExcept(t, l.parent, l.data, l.ts); after != before {
				t.Errorf("something outside the data directory changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			oracle.FailedAttempt(t, l.data)
			// No link in the data directory may point outside it, but the tablespace ones.
			filepath.WalkDir(l.data, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.Type()&fs.ModeSymlink != 0 {
					target, _ := os.Readlink(p)
					if !strings.HasPrefix(target, l.ts+"/") {
						t.Errorf("link %s -> %s left in the data directory", p, target)
					}
				}
				return nil
			})
		})
	}
}
