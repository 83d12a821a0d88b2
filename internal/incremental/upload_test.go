package incremental

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pg-standby/pg-standby/internal/basebackup"
	"github.com/pg-standby/pg-standby/internal/manifest"
	"github.com/pg-standby/pg-standby/internal/replconn"
	"github.com/pg-standby/pg-standby/internal/testpg"
	"github.com/pg-standby/pg-standby/internal/wal"
)

type member struct {
	size int64
	data []byte // INCREMENTAL members only
}

type backupResult struct {
	members       map[string]*member
	archiveBytes  int64 // tar bytes received ('d' before 'm')
	manifestBytes int64
}

// baseBackup runs cmd (a BASE_BACKUP) on conn with a minimal reader: the tar
// archives are kept in memory and listed.
func baseBackup(t *testing.T, conn *pgconn.PgConn, cmd string) (backupResult, error) {
	t.Helper()
	res := backupResult{members: map[string]*member{}}
	fe := conn.Frontend()
	fe.Send(&pgproto3.Query{String: cmd})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var archives []*bytes.Buffer
	inManifest := false
	var srvErr error
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for done := false; !done; {
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			dm, err := basebackup.Decode(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			switch d := dm.(type) {
			case basebackup.NewArchive:
				archives = append(archives, &bytes.Buffer{})
			case basebackup.ManifestStart:
				inManifest = true
			case basebackup.Data:
				if inManifest {
					res.manifestBytes += int64(len(d.Bytes))
				} else {
					res.archiveBytes += int64(len(d.Bytes))
					archives[len(archives)-1].Write(d.Bytes)
				}
			}
		case *pgproto3.ErrorResponse:
			if srvErr == nil {
				srvErr = pgconn.ErrorResponseToPgError(m)
			}
		case *pgproto3.ReadyForQuery:
			done = true
		}
	}
	if srvErr != nil {
		return res, srvErr
	}
	for _, a := range archives {
		tr := tar.NewReader(a)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			mb := &member{size: h.Size}
			if _, ok := TargetName(h.Name); ok {
				mb.data, _ = io.ReadAll(tr)
			}
			res.members[h.Name] = mb
		}
	}
	return res, nil
}

func systemID(t *testing.T, conn *pgconn.PgConn) (uint64, wal.LSN, uint32) {
	t.Helper()
	sys, err := replconn.IdentifySystem(context.Background(), conn)
	if err != nil {
		t.Fatal(err)
	}
	id, err := strconv.ParseUint(sys.SystemID, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return id, sys.XLogPos, sys.Timeline
}

const incCmd = "BASE_BACKUP (LABEL 'inc', INCREMENTAL, CHECKPOINT 'fast', WAIT false, MANIFEST 'yes', TARGET 'client')"
const fullCmd = "BASE_BACKUP (LABEL 'full', CHECKPOINT 'fast', WAIT false, MANIFEST 'yes', TARGET 'client')"

// TestUploadPartialManifest is test (b): a manifest listing part of the
// files, with one WAL range starting at the prior start LSN, makes the
// server send the listed relation files as INCREMENTAL.* and the rest whole.
func TestUploadPartialManifest(t *testing.T) {
	forEach17(t, func(t *testing.T, v testpg.Version) {
		s := startPrimary(t, v, map[string]string{"summarize_wal": "on", "autovacuum": "off"})
		sqlEach(t, s, before)
		settle(t, s)
		dir := testpg.TempDir(t)
		full := filepath.Join(dir, "full")
		run(t, v, "pg_basebackup", "-d", fmt.Sprintf("host=127.0.0.1 port=%d user=replicator", s.Port), "-D", full, "-c", "fast", "-X", "none", "--no-sync")
		sqlEach(t, s, between)
		rel := func(table string) string { return s.SQL(t, "SELECT pg_relation_filepath('"+table+"')") }
		untouched, upd, ext := rel("untouched"), rel("upd"), rel("ext")

		data, err := os.ReadFile(filepath.Join(full, "backup_manifest"))
		if err != nil {
			t.Fatal(err)
		}
		fm, err := manifest.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		// The prior state: the postgres database's files but ext's (as if
		// the attempt died before writing them), from the full backup's start.
		db := filepath.Dir(untouched) + "/"
		listed := map[string]int64{}
		var files []ManifestFile
		for _, f := range fm.Files {
			if strings.HasPrefix(f.Path, db) && !strings.HasPrefix(f.Path, ext) && Listable(f.Path) {
				files = append(files, ManifestFile{Path: f.Path, Size: f.Size})
				listed[f.Path] = f.Size
			}
		}
		start := fm.WALRanges[0]
		conn := replConnect(t, s)
		srv, err := probe(conn)
		if err != nil {
			t.Fatal(err)
		}
		sysid, _, _ := systemID(t, conn)
		up, err := RenderManifest(&Manifest{SystemID: sysid, Files: files,
			WALRanges: []manifest.WALRange{{Timeline: start.Timeline, Start: start.Start, End: start.Start}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := Upload(context.Background(), conn, up); err != nil {
			t.Fatal(err)
		}
		inc, err := baseBackup(t, conn, incCmd)
		if err != nil {
			t.Fatal(Classify(err))
		}

		var incFiles, incOfListed int
		var incBytes, standsFor int64
		for name, mb := range inc.members {
			target, ok := TargetName(name)
			if !ok {
				continue
			}
			incFiles++
			if _, ok := listed[target]; !ok {
				t.Errorf("%s came incrementally but was not listed", name)
			}
			var sink recSink
			d, _ := NewDecoder(srv.Params, name, mb.size, &sink)
			if err := d.Write(mb.data); err != nil {
				t.Fatal(err)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			incOfListed++
			incBytes += mb.size
			standsFor += int64(sink.h.Length()) * int64(srv.Params.BlockSize)
			if target == untouched && (len(sink.h.Blocks) != 0 || int64(sink.h.TruncationBlocks)*8192 != listed[untouched]) {
				t.Errorf("untouched table: %d blocks, truncation length %d; want 0 blocks, %d", len(sink.h.Blocks), sink.h.TruncationBlocks, listed[untouched]/8192)
			}
			if target == upd && len(sink.h.Blocks) == 0 {
				t.Errorf("updated table came without blocks")
			}
		}
		for _, want := range []string{untouched, upd} {
			if inc.members[filepath.Dir(want)+"/"+IncrementalPrefix+filepath.Base(want)] == nil {
				t.Errorf("%s did not come incrementally (whole member: %v, listed size %d)", want, inc.members[want], listed[want])
			}
		}
		wholes := []string{ext, "global/pg_control", upd + "_vm", upd + "_fsm"}
		for _, f := range fm.Files {
			if strings.HasPrefix(f.Path, "base/1/") && f.Size > 0 {
				wholes = append(wholes, f.Path) // another database, unlisted
				break
			}
		}
		for _, whole := range wholes {
			if inc.members[whole] == nil {
				t.Errorf("unlisted %s did not come whole", whole)
			}
		}

		conn2 := replConnect(t, s)
		fullRes, err := baseBackup(t, conn2, fullCmd)
		if err != nil {
			t.Fatal(err)
		}
		var listedBytes int64
		for _, n := range listed {
			listedBytes += n
		}
		t.Logf("PostgreSQL %d: listed %d files (%d bytes) of %d; received %d INCREMENTAL members (%d bytes standing for %d bytes of files); "+
			"incremental backup %d tar bytes + %d manifest bytes, full backup %d tar bytes + %d manifest bytes (%.1f%%)",
			v.Major, len(listed), listedBytes, len(fm.Files), incOfListed, incBytes, standsFor,
			inc.archiveBytes, inc.manifestBytes, fullRes.archiveBytes, fullRes.manifestBytes,
			100*float64(inc.archiveBytes)/float64(fullRes.archiveBytes))
		// For scale: every Listable file of the full backup listed.
		var all []ManifestFile
		for _, f := range fm.Files {
			if Listable(f.Path) {
				all = append(all, ManifestFile{Path: f.Path, Size: f.Size})
			}
		}
		up, err = RenderManifest(&Manifest{SystemID: sysid, Files: all,
			WALRanges: []manifest.WALRange{{Timeline: start.Timeline, Start: start.Start, End: start.Start}}})
		if err != nil {
			t.Fatal(err)
		}
		conn3 := replConnect(t, s)
		if err := Upload(context.Background(), conn3, up); err != nil {
			t.Fatal(err)
		}
		allRes, err := baseBackup(t, conn3, incCmd)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("PostgreSQL %d, all %d relation files listed: %d tar bytes (%.1f%% of the full backup)",
			v.Major, len(all), allRes.archiveBytes, 100*float64(allRes.archiveBytes)/float64(fullRes.archiveBytes))
		if incFiles == 0 || inc.archiveBytes >= fullRes.archiveBytes {
			t.Fatalf("nothing saved: %d incremental files, %d vs %d bytes", incFiles, inc.archiveBytes, fullRes.archiveBytes)
		}
	})
}

// TestFallbackErrors is test (c): where incremental backup cannot apply,
// the errors are *FallbackError, classified by version and SQLSTATE.
func TestFallbackErrors(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		s := startPrimary(t, v, nil) // summarize_wal defaults to off
		conn := replConnect(t, s)
		_, err := probe(conn)
		var fe *FallbackError
		want := ErrSummarizeWALOff
		if v.Major < MinMajor {
			want = ErrUnsupportedVersion
		}
		if !errors.As(err, &fe) || !errors.Is(err, want) {
			t.Fatalf("ProbeServer: %v, want a FallbackError %v", err, want)
		}
		if v.Major < MinMajor {
			return
		}
		sysid, pos, tli := systemID(t, conn)
		m := func(id uint64, start wal.LSN) []byte {
			b, err := RenderManifest(&Manifest{SystemID: id, Files: []ManifestFile{{Path: "global/pg_control", Size: 8192}},
				WALRanges: []manifest.WALRange{{Timeline: tli, Start: start, End: start}}})
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		// summarize_wal off: the server refuses BASE_BACKUP (INCREMENTAL).
		if err := Upload(context.Background(), conn, m(sysid, pos)); err != nil {
			t.Fatal(err)
		}
		_, err = baseBackup(t, conn, incCmd)
		checkFallback(t, "summarize_wal off", Classify(err), ErrRefused)

		// Another system's manifest: UPLOAD_MANIFEST itself refuses it.
		checkFallback(t, "foreign system identifier", Upload(context.Background(), conn, m(sysid+1, pos)), ErrManifestRejected)

		// summarize_wal on, but a range from before the first summary.
		s.SQL(t, "ALTER SYSTEM SET summarize_wal = on")
		s.SQL(t, "SELECT pg_reload_conf()")
		s.WaitFor(t, "SHOW summarize_wal", "on", 30*time.Second)
		conn = replConnect(t, s)
		if _, err := probe(conn); err != nil {
			t.Fatal(err)
		}
		if err := Upload(context.Background(), conn, m(sysid, 0x100)); err != nil {
			t.Fatal(err)
		}
		_, err = baseBackup(t, conn, incCmd)
		checkFallback(t, "summaries missing", Classify(err), ErrRefused)
	})
}

func checkFallback(t *testing.T, what string, err, reason error) {
	t.Helper()
	var fe *FallbackError
	var pe *pgconn.PgError
	if !errors.As(err, &fe) || !errors.Is(err, reason) || !errors.As(err, &pe) {
		t.Fatalf("%s: %v, want a FallbackError %v carrying the server's error", what, err, reason)
	}
	t.Logf("%s: SQLSTATE %s: %v", what, pe.Code, err)
}

func TestMajorOf(t *testing.T) {
	for v, want := range map[string]int{"17.2": 17, "18beta1": 18, "15.10 (Debian 15.10-0+deb12u1)": 15, "18devel": 18, "": 0, "x17": 0} {
		if got := majorOf(v); got != want {
			t.Errorf("majorOf(%q) = %d, want %d", v, got, want)
		}
	}
}

// probe is ProbeServer on the answers conn gives to ShowAll.
func probe(conn *pgconn.PgConn) (Server, error) {
	set, err := replconn.ShowAll(context.Background(), conn, ProbeSettings)
	if err != nil {
		return Server{}, err
	}
	return ProbeServer(set, ServerMajor(conn))
}
