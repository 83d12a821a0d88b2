package walstream

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg-standby/pg-standby/internal/fakeprimary"
	"github.com/pg-standby/pg-standby/internal/replconn"
	"github.com/pg-standby/pg-standby/internal/wal"
)

// segSize is small so that scripts cross segment boundaries cheaply.
const segSize = 1 << 20

// connect opens a replication connection closed at the end of the test.
func connect(t *testing.T, conninfo string) *pgconn.PgConn {
	t.Helper()
	cfg, err := replconn.ParseConninfo(conninfo)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := replconn.Connect(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// walDir is an empty pg_wal.
func walDir(t *testing.T) (string, *os.Root) {
	t.Helper()
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return dir, root
}

// startRun runs r in a goroutine; the returned function waits for its result.
func startRun(t *testing.T, ctx context.Context, r *Receiver, tli uint32, start wal.LSN) func() error {
	t.Helper()
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		err = r.Run(ctx, tli, start)
	}()
	// The goroutine never outlives the test, whatever fails first.
	t.Cleanup(func() {
		r.conn.Conn().Close()
		<-done
	})
	return func() error {
		select {
		case <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("Receiver.Run did not return within 30s")
			return nil
		}
	}
}

// pattern is n bytes that differ per position and per seed.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i/7) ^ seed
	}
	return b
}

// chunks cuts data at from into XLogData payloads of at most 128 kB (MAX_SEND_SIZE).
func chunks(from, serverEnd wal.LSN, data []byte) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		n := min(len(data), 128<<10)
		out = append(out, fakeprimary.WALData(from, serverEnd, data[:n]))
		from += wal.LSN(n)
		data = data[n:]
	}
	return out
}

// files lists the directory's names.
func files(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// wantSegment checks a segment file: full size, data at offset 0, zeros after.
func wantSegment(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != segSize {
		t.Fatalf("%s: %d bytes, want %d", name, len(got), segSize)
	}
	if !bytes.Equal(got[:len(data)], data) {
		t.Errorf("%s: WAL bytes differ from what the primary sent", name)
	}
	if !bytes.Equal(got[len(data):], make([]byte, segSize-len(data))) {
		t.Errorf("%s: not zero after %d bytes", name, len(data))
	}
}

// TestTimelineSwitch: the primary ends timeline 1 mid-segment with the next
// timeline's result set; the receiver fetches 00000002.history and goes on
// from the start of that segment on timeline 2, across a segment boundary,
// up to the stop position.
func TestTimelineSwitch(t *testing.T) {
	const (
		seg1     = wal.LSN(segSize)    // 0/100000
		switchAt = seg1 + segSize/2    // 0/180000: timeline 2 begins
		stop     = 2*seg1 + segSize/16 // 0/210000, in the next segment
		hist     = "1\t0/180000\tno recovery target specified\n"
	)
	tl1 := pattern(int(switchAt-seg1), 1)
	tl2 := append(slices.Clone(tl1), pattern(int(stop-switchAt), 2)...)
	fp := fakeprimary.Start(t, fakeprimary.Script{WAL: map[uint32]fakeprimary.WALTimeline{
		1: {Messages: chunks(seg1, switchAt, tl1), Next: 2, NextStart: switchAt},
		2: {Messages: chunks(seg1, stop, tl2), History: hist},
	}})
	dir, root := walDir(t)
	r := New(connect(t, fp.ConnString()), Options{Dir: root, FileMode: 0o600, SegmentSize: segSize, StatusInterval: time.Hour})
	r.Stop(stop)
	if err := startRun(t, context.Background(), r, 1, seg1+0x28)(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	wantCmds := []string{
		"START_REPLICATION PHYSICAL 0/100000 TIMELINE 1",
		"TIMELINE_HISTORY 2",
		"START_REPLICATION PHYSICAL 0/100000 TIMELINE 2",
	}
	if got := fp.Commands(); !slices.Equal(got, wantCmds) {
		t.Errorf("commands:\n got %q\nwant %q", got, wantCmds)
	}
	wantFiles := []string{"000000010000000000000001", "00000002.history", "000000020000000000000001", "000000020000000000000002"}
	if got := files(t, dir); !slices.Equal(got, wantFiles) {
		t.Fatalf("pg_wal holds %q, want %q", got, wantFiles)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "00000002.history")); err != nil || string(got) != hist {
		t.Errorf("00000002.history = %q, %v; want %q", got, err, hist)
	}
	wantSegment(t, dir, "000000010000000000000001", tl1)
	wantSegment(t, dir, "000000020000000000000001", tl2[:segSize])
	wantSegment(t, dir, "000000020000000000000002", tl2[segSize:])

	from, to := r.Ranges()
	if from[1] != seg1 || to[1] != switchAt || from[2] != seg1 || to[2] != stop || len(from) != 2 {
		t.Errorf("Ranges = %v, %v; want 1: %s..%s, 2: %s..%s", from, to, seg1, switchAt, seg1, stop)
	}
	if r.Flushed() != stop {
		t.Errorf("Flushed = %s, want %s", r.Flushed(), stop)
	}
}

// TestKeepaliveReplyAndStop: a keepalive that requests a reply gets a status
// update at once (the interval is an hour) reporting the WAL written and made
// durable, and nothing applied; the segment stays .partial while incomplete
// and Stop, while the receiver waits for the server, renames it.
func TestKeepaliveReplyAndStop(t *testing.T) {
	const start, end = wal.LSN(segSize), wal.LSN(segSize + 8192)
	data := pattern(8192, 3)
	fp := fakeprimary.Start(t, fakeprimary.Script{WAL: map[uint32]fakeprimary.WALTimeline{
		1: {Messages: append(chunks(start, end, data), fakeprimary.Keepalive(end, true))},
	}})
	dir, root := walDir(t)
	r := New(connect(t, fp.ConnString()), Options{Dir: root, FileMode: 0o600, SegmentSize: segSize, StatusInterval: time.Hour})
	wait := startRun(t, context.Background(), r, 1, start)

	before := time.Now()
	u := fp.WaitStatus(t, 30*time.Second, func(fakeprimary.StatusUpdate) bool { return true })
	if u.Written != end || u.Flushed != end || u.Applied != 0 || u.ReplyRequested {
		t.Errorf("status update %+v, want written = flushed = %s, applied 0, no reply requested", u, end)
	}
	if d := u.ClientTime.Sub(before); d < -time.Minute || d > time.Minute {
		t.Errorf("status update time %v, now %v", u.ClientTime, before)
	}
	if got := files(t, dir); !slices.Equal(got, []string{"000000010000000000000001.partial"}) {
		t.Errorf("before Stop pg_wal holds %q, want only the .partial segment", got)
	}

	r.Stop(end)
	if err := wait(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := files(t, dir); !slices.Equal(got, []string{"000000010000000000000001"}) {
		t.Fatalf("after Stop pg_wal holds %q", got)
	}
	wantSegment(t, dir, "000000010000000000000001", data)
}

// TestStatusInterval: without keepalives the receiver reports its position
// every StatusInterval, so the walsender does not time it out.
func TestStatusInterval(t *testing.T) {
	const start, end = wal.LSN(3 * segSize), wal.LSN(3*segSize + 4096)
	fp := fakeprimary.Start(t, fakeprimary.Script{WAL: map[uint32]fakeprimary.WALTimeline{
		1: {Messages: chunks(start, end, pattern(4096, 4))},
	}})
	_, root := walDir(t)
	r := New(connect(t, fp.ConnString()), Options{Dir: root, FileMode: 0o600, SegmentSize: segSize, StatusInterval: 20 * time.Millisecond})
	wait := startRun(t, context.Background(), r, 1, start)
	n := 0
	fp.WaitStatus(t, 30*time.Second, func(u fakeprimary.StatusUpdate) bool {
		if u.Written == end && u.Flushed == end {
			n++
		}
		return n == 3
	})
	r.Stop(end)
	if err := wait(); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestGapFails: WAL that does not continue where the last message ended fails
// the stream and leaves the segment .partial, never under its final name.
func TestGapFails(t *testing.T) {
	const start = wal.LSN(segSize)
	fp := fakeprimary.Start(t, fakeprimary.Script{WAL: map[uint32]fakeprimary.WALTimeline{
		1: {Messages: [][]byte{
			fakeprimary.WALData(start, start+0x3000, pattern(4096, 5)),
			fakeprimary.WALData(start+0x2000, start+0x3000, pattern(4096, 6)),
		}},
	}})
	dir, root := walDir(t)
	r := New(connect(t, fp.ConnString()), Options{Dir: root, FileMode: 0o600, SegmentSize: segSize})
	err := startRun(t, context.Background(), r, 1, start)()
	if err == nil || !strings.Contains(err.Error(), "got WAL at 0/102000, want 0/101000") {
		t.Fatalf("Run = %v, want a gap error", err)
	}
	if got := files(t, dir); !slices.Equal(got, []string{"000000010000000000000001.partial"}) {
		t.Errorf("pg_wal holds %q, want only the .partial segment", got)
	}
}

// TestServerError: an ErrorResponse in the stream fails Run with the
// server's SQLSTATE, classified by code.
func TestServerError(t *testing.T) {
	fp := fakeprimary.Start(t, fakeprimary.Script{WAL: map[uint32]fakeprimary.WALTimeline{}})
	_, root := walDir(t)
	r := New(connect(t, fp.ConnString()), Options{Dir: root, FileMode: 0o600, SegmentSize: segSize})
	err := startRun(t, context.Background(), r, 1, segSize)()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "58P01" {
		t.Fatalf("Run = %v, want the primary's 58P01", err)
	}
}

// TestCancel: cancelling ctx ends a Run waiting for the server, with the
// cause in the error, and leaves the segment .partial.
func TestCancel(t *testing.T) {
	const start = wal.LSN(segSize)
	fp := fakeprimary.Start(t, fakeprimary.Script{WAL: map[uint32]fakeprimary.WALTimeline{
		1: {Messages: append(chunks(start, start+4096, pattern(4096, 7)), fakeprimary.Keepalive(start+4096, true))},
	}})
	dir, root := walDir(t)
	r := New(connect(t, fp.ConnString()), Options{Dir: root, FileMode: 0o600, SegmentSize: segSize, StatusInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	wait := startRun(t, ctx, r, 1, start)
	fp.WaitStatus(t, 30*time.Second, func(u fakeprimary.StatusUpdate) bool { return u.Written == start+4096 })
	cancel()
	if err := wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "000000010000000000000001")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("cancelled segment under its final name: %v", err)
	}
}

// TestZeroTailPause: after WAL that ends in an all-zero page (a switch's
// filler) the receiver stops reading until Stop: the keepalive queued behind
// the zeros is not answered, and Stop at the position before the zeros ends
// Run with the segment complete up to there.
func TestZeroTailPause(t *testing.T) {
	const start = wal.LSN(segSize)
	data := pattern(8192, 8)
	end := start + wal.LSN(len(data)) + 2*128<<10
	msgs := chunks(start, end, append(slices.Clone(data), make([]byte, 2*128<<10)...))
	fp := fakeprimary.Start(t, fakeprimary.Script{WAL: map[uint32]fakeprimary.WALTimeline{
		1: {Messages: append(msgs, fakeprimary.Keepalive(end, true))},
	}})
	dir, root := walDir(t)
	r := New(connect(t, fp.ConnString()), Options{Dir: root, FileMode: 0o600, SegmentSize: segSize, StatusInterval: time.Hour, ZeroPause: time.Hour})
	wait := startRun(t, context.Background(), r, 1, start)
	time.Sleep(300 * time.Millisecond)
	if s := fp.Statuses(); len(s) != 0 {
		t.Errorf("status updates %+v while paused at the zeros: the receiver read on", s)
	}
	r.Stop(start + wal.LSN(len(data)))
	if err := wait(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	wantSegment(t, dir, "000000010000000000000001", data)
}

// TestZeroPageNotSkipped: zeros followed by more WAL are a pause, never a
// skip: after ZeroPause, with no Stop yet, the receiver reads on, answers the
// keepalive behind the WAL and writes every byte.
func TestZeroPageNotSkipped(t *testing.T) {
	const start = wal.LSN(segSize)
	all := append(pattern(8192, 9), make([]byte, 128<<10)...)
	all = append(all, pattern(3*8192, 10)...)
	end := start + wal.LSN(len(all))
	fp := fakeprimary.Start(t, fakeprimary.Script{WAL: map[uint32]fakeprimary.WALTimeline{
		1: {Messages: append(chunks(start, end, all), fakeprimary.Keepalive(end, true))},
	}})
	dir, root := walDir(t)
	r := New(connect(t, fp.ConnString()), Options{Dir: root, FileMode: 0o600, SegmentSize: segSize, StatusInterval: time.Hour, ZeroPause: 50 * time.Millisecond})
	wait := startRun(t, context.Background(), r, 1, start)
	fp.WaitStatus(t, 30*time.Second, func(u fakeprimary.StatusUpdate) bool { return u.Written == end })
	r.Stop(end)
	if err := wait(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	wantSegment(t, dir, "000000010000000000000001", all)
}

func TestEndsInZeroPage(t *testing.T) {
	z := make([]byte, 3*walPage)
	nz := pattern(3*walPage, 11)
	for _, c := range []struct {
		lsn  wal.LSN
		data []byte
		want bool
	}{
		{0, z, true},
		{0, z[:walPage-1], false},     // no whole page
		{100, z[:2*walPage], true},    // [8192, 16384) is inside
		{100, z[:walPage+100], false}, // ends at 8292: page [0, 8192) starts before the data
		{0, append(slices.Clone(nz[:2*walPage]), z[:walPage]...), true},
		{0, append(slices.Clone(z[:2*walPage]), nz[:walPage]...), false}, // WAL after the zeros
	} {
		if got := endsInZeroPage(c.lsn, c.data); got != c.want {
			t.Errorf("endsInZeroPage(%s, %d bytes) = %v, want %v", c.lsn, len(c.data), got, c.want)
		}
	}
}
