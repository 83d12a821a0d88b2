package backup_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/faultproxy"
	"github.com/pg-standby/pg-standby/internal/oracle"
	"github.com/pg-standby/pg-standby/internal/progress"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// TestResumeSegmentExtended: a table just under 1 GB (one segment) whose
// file the first attempt completed is extended between attempts, so that
// segment 0 fills up and ".1" appears; the retry reconstructs segment 0 by
// changed blocks (not received whole), receives ".1" whole, and the result
// passes the oracles.
func TestResumeSegmentExtended(t *testing.T) {
	testpg.SkipShort(t, "a relation of 1 GB on a real server")
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.RequireIncremental(t, v)
		// No data checksums: the content check's scan sets hint bits, which
		// with checksums would write a full-page image of each of the 131072
		// pages into WAL, for the standby to replay.
		opts := testpg.Options{InitdbDefaults: true, Conf: map[string]string{"summarize_wal": "on", "autovacuum": "off"}}
		if v.Major >= 18 {
			opts.Initdb = []string{"--no-data-checksums"}
		}
		p := testpg.Start(t, opts)
		const blocks, seg = 131000, 131072 // RELSEG_SIZE: 1 GB of 8 kB blocks
		t0 := time.Now()
		// fillfactor 10 and rows of 450 bytes: one row a page, so 1 GB of
		// table costs only 131000 rows (and about 70 MB of WAL).
		p.SQL(t, "CREATE TABLE big (g int, pad text) WITH (fillfactor = 10)")
		p.SQL(t, "INSERT INTO big SELECT g, repeat('x', 450) FROM generate_series(1, "+strconv.Itoa(blocks)+") g")
		rel := p.SQL(t, "SELECT pg_relation_filepath('big')")
		if got := p.SQL(t, "SELECT pg_relation_size('big') / 8192"); got != strconv.Itoa(blocks) {
			t.Fatalf("big has %s blocks, want %d (one row a page)", got, blocks)
		}
		t.Logf("PostgreSQL %d: %d blocks of big written in %v", v.Major, blocks, time.Since(t0))

		// The first attempt is stopped once segment 0 is recorded complete;
		// the fault proxy holds the copy just past it until then.
		e := newFaultEnv(t, p, "")
		dir := e.data
		size := int64(blocks) * 8192
		e.proxy.Arm(faultproxy.Fault{Conn: 0, Dir: faultproxy.ToClient, Pattern: []byte(rel + "\x00"), After: size + size/1000 + 64<<10, Action: faultproxy.Stall})
		t1 := time.Now()
		var polled time.Time
		entries := interruptWhen(t, backup.Options{DataDir: dir}, func() bool {
			if time.Since(polled) < 50*time.Millisecond {
				return false
			}
			polled = time.Now()
			j, ok := oracle.Journal(t, dir)[rel]
			return ok && j.Size == size
		})
		e.proxy.Disarm()
		t.Logf("first attempt stopped after segment 0 of big was recorded complete, in %v (%d files complete)", time.Since(t1), len(entries))

		// Segment 0 fills up to 1 GB, and segment 1 appears.
		p.SQL(t, "INSERT INTO big SELECT g, repeat('y', 450) FROM generate_series("+strconv.Itoa(blocks+1)+", "+strconv.Itoa(blocks+200)+") g")
		if got := p.SQL(t, "SELECT pg_relation_size('big') / 8192"); got != strconv.Itoa(blocks+200) {
			t.Fatalf("big has %s blocks after the extension, want %d", got, blocks+200)
		}

		tr := progress.NewTracker()
		log, records := oracle.CaptureLog(t)
		t2 := time.Now()
		if _, err := run(t, backup.Options{DataDir: dir, Progress: tr, Log: log}); err != nil {
			t.Fatalf("retry: %v", err)
		}
		retry := time.Since(t2)
		recs := records.Records("resumed by changed blocks: files reconstructed in place")
		if len(recs) != 1 {
			t.Fatalf("%d \"resumed by changed blocks\" records; want one", len(recs))
		}
		r := recs[0]
		received, _ := r["bytes_received"].(float64)
		reused, _ := r["bytes_reused"].(float64)
		t.Logf("PostgreSQL %d: retry in %v: %v files reconstructed, %v blocks received in increments, %.0f bytes received, %.0f reused",
			v.Major, retry, r["reconstructed"], r["blocks_received"], received, reused)
		// Segment 0's 131000 prior blocks are kept, not received again.
		if reused < blocks*8192 || received > 256<<20 {
			t.Errorf("retry received %.0f bytes and reused %.0f; want segment 0 (%d bytes) reused, not received", received, reused, blocks*8192)
		}
		for name, want := range map[string]int64{rel: seg * 8192, rel + ".1": (blocks + 200 - seg) * 8192} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() != want {
				t.Errorf("%s after the retry: %v; want %d bytes", name, err, want)
			}
		}
		t3 := time.Now()
		oracle.Standby(t, p, dir, "big")
		t.Logf("oracles in %v; whole test %v", time.Since(t3), time.Since(t0))
	})
}
