package walstream

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/replconn"
	"github.com/pg-standby/pg-standby/internal/testpg"
	"github.com/pg-standby/pg-standby/internal/wal"
)

// TestPrimaryWALBytes streams WAL from a real PostgreSQL through a temporary
// slot across a segment switch up to a flushed position and compares each
// segment, up to that position, with the primary's own pg_wal file.
func TestPrimaryWALBytes(t *testing.T) {
	pg := testpg.Start(t, testpg.Options{})
	t.Logf("server_version %s", pg.SQL(t, "SHOW server_version"))
	conn := connect(t, pg.ConnString())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sys, err := replconn.IdentifySystem(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if err := replconn.CreateSlot(ctx, conn, "walstream_test", true); err != nil {
		t.Fatal(err)
	}
	segSize := int64(16 << 20)
	pg.SQL(t, "CREATE TABLE t AS SELECT g, md5(g::text) FROM generate_series(1, 20000) g")
	pg.SQL(t, "SELECT pg_switch_wal()")
	pg.SQL(t, "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g")
	stop, err := wal.ParseLSN(pg.SQL(t, "SELECT pg_current_wal_flush_lsn()"))
	if err != nil {
		t.Fatal(err)
	}

	dir, root := walDir(t)
	r := New(conn, Options{Dir: root, FileMode: 0o600, SegmentSize: segSize, Slot: "walstream_test", StatusInterval: time.Second})
	r.Stop(stop)
	if err := startRun(t, ctx, r, sys.Timeline, sys.XLogPos)(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	first := wal.SegmentStart(sys.XLogPos, segSize)
	last := wal.SegmentStart(stop, segSize)
	if first == last {
		t.Fatalf("stream from %s to %s stays in one segment: pg_switch_wal did not cut it", sys.XLogPos, stop)
	}
	for seg := first; seg <= last; seg += wal.LSN(segSize) {
		name := wal.SegmentName(sys.Timeline, seg, segSize)
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		// Run as root or as the data dir's owner, the test may read pg_wal itself.
		want, err := os.ReadFile(filepath.Join(pg.DataDir, "pg_wal", name))
		if err != nil {
			t.Fatal(err)
		}
		n := segSize
		if seg == last {
			n = int64(stop - seg)
		}
		t.Logf("%s: comparing %d bytes with the primary's", name, n)
		if int64(len(got)) != segSize || !bytes.Equal(got[:n], want[:n]) {
			t.Errorf("%s: %d bytes; first %d differ from the primary's", name, len(got), n)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, wal.SegmentName(sys.Timeline, last, segSize)+".partial")); err == nil {
		t.Errorf("segment at the stop point left .partial")
	}
}
