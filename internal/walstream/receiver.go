package walstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pg-standby/pg-standby/internal/durable"
	"github.com/pg-standby/pg-standby/internal/replconn"
	"github.com/pg-standby/pg-standby/internal/wal"
)

// Options configure a Receiver.
type Options struct {
	// Dir is the instance's pg_wal directory.
	Dir         *os.Root
	FileMode    os.FileMode
	SegmentSize int64
	// Slot is the replication slot to stream from ("" for none).
	Slot string
	// StatusInterval is how often flushed positions are reported to the
	// primary (wal_receiver_status_interval); 10s when zero.
	StatusInterval time.Duration
	// ZeroPause bounds how long reading waits for Stop after an all-zero
	// WAL page (pauseAtZeros); 1s when zero.
	ZeroPause time.Duration
}

// Receiver streams WAL from one timeline position onwards until told where
// to stop. Its exported methods other than Run are safe for concurrent use.
type Receiver struct {
	conn *pgconn.PgConn
	opt  Options

	stop     atomic.Uint64 // target position; 0 until Stop is called
	stopped  chan struct{} // closed by the first Stop
	stopOnce sync.Once
	flushed  atomic.Uint64 // WAL durable on disk up to here

	// zeroSeen: the last message ended in an all-zero page; pausedSeg: the
	// segment of the last pause (one per segment).
	zeroSeen  bool
	pausedSeg wal.LSN
	cancelled <-chan struct{} // Run's ctx.Done()

	tli     uint32
	seg     *segmentFile
	written wal.LSN
	ranges  map[uint32][2]wal.LSN // timeline → [from, to) streamed
}

// New returns a Receiver on a replication connection that it owns from now on.
func New(conn *pgconn.PgConn, opt Options) *Receiver {
	if opt.StatusInterval == 0 {
		opt.StatusInterval = 10 * time.Second
	}
	if opt.ZeroPause == 0 {
		opt.ZeroPause = time.Second
	}
	return &Receiver{conn: conn, opt: opt, ranges: map[uint32][2]wal.LSN{}, stopped: make(chan struct{}), pausedSeg: ^wal.LSN(0)}
}

// Stop tells the receiver to return once WAL up to end is durable.
func (r *Receiver) Stop(end wal.LSN) {
	r.stop.Store(uint64(end))
	r.stopOnce.Do(func() { close(r.stopped) })
	// Wake a receive that is waiting for the server.
	r.conn.Conn().SetReadDeadline(time.Now())
}

// Flushed is the position up to which WAL is durable in pg_wal.
func (r *Receiver) Flushed() wal.LSN { return wal.LSN(r.flushed.Load()) }

// Ranges returns, per timeline, where streaming started and how far WAL is
// durable. Call it after Run returned.
func (r *Receiver) Ranges() (from, to map[uint32]wal.LSN) {
	from, to = map[uint32]wal.LSN{}, map[uint32]wal.LSN{}
	for tli, rg := range r.ranges {
		from[tli], to[tli] = rg[0], rg[1]
	}
	return from, to
}

// Run streams WAL of timeline tli from the start of the segment holding
// start, following timeline switches, until Stop's position is durable or
// the stream fails. ctx cancels it by closing the connection.
func (r *Receiver) Run(ctx context.Context, tli uint32, start wal.LSN) (err error) {
	done := context.AfterFunc(ctx, func() { r.conn.Conn().Close() })
	defer done()
	r.cancelled = ctx.Done()
	defer func() {
		if r.seg != nil {
			r.seg.abandon()
			r.seg = nil
		}
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", context.Cause(ctx), err)
		}
	}()
	pos := wal.SegmentStart(start, r.opt.SegmentSize)
	for {
		if err := r.history(tli); err != nil {
			return err
		}
		next, nextPos, err := r.stream(tli, pos)
		if err != nil || next == 0 {
			return err
		}
		tli, pos = next, wal.SegmentStart(nextPos, r.opt.SegmentSize)
	}
}

// history fetches and writes the timeline's history file (timelines past 1
// need it for recovery to follow them).
func (r *Receiver) history(tli uint32) error {
	if tli == 1 {
		return nil
	}
	rows, err := replconn.Exec(context.Background(), r.conn, fmt.Sprintf("TIMELINE_HISTORY %d", tli))
	if err != nil {
		return fmt.Errorf("fetch history of timeline %d: %w", tli, err)
	}
	if len(rows) != 1 || len(rows[0]) != 2 {
		return fmt.Errorf("fetch history of timeline %d: unexpected result", tli)
	}
	name := wal.HistoryFileName(tli)
	if string(rows[0][0]) != name {
		return fmt.Errorf("fetch history of timeline %d: server sent file %q, want %q", tli, rows[0][0], name)
	}
	if err := durable.WriteFile(r.opt.Dir, name, rows[0][1], r.opt.FileMode); err != nil {
		return err
	}
	return durable.SyncDir(r.opt.Dir, ".")
}

// stream runs one START_REPLICATION. It returns the next timeline and its
// start when the server ended this one, or 0 when the stop position is durable.
func (r *Receiver) stream(tli uint32, pos wal.LSN) (uint32, wal.LSN, error) {
	cmd := fmt.Sprintf("START_REPLICATION PHYSICAL %s TIMELINE %d", pos, tli)
	if r.opt.Slot != "" {
		cmd = fmt.Sprintf("START_REPLICATION SLOT %s PHYSICAL %s TIMELINE %d", replconn.QuoteIdent(r.opt.Slot), pos, tli)
	}
	fe := r.conn.Frontend()
	fe.Send(&pgproto3.Query{String: cmd})
	if err := fe.Flush(); err != nil {
		return 0, 0, fmt.Errorf("send START_REPLICATION: %w", err)
	}
	r.tli, r.written = tli, pos
	if rg, ok := r.ranges[tli]; !ok || pos < rg[0] {
		r.ranges[tli] = [2]wal.LSN{pos, pos}
	}
	lastStatus := time.Now()
	copying := false
	for {
		r.pauseAtZeros()
		if r.reachedStop() {
			return 0, 0, r.finishSegment()
		}
		if err := r.conn.Conn().SetReadDeadline(lastStatus.Add(r.opt.StatusInterval)); err != nil {
			return 0, 0, fmt.Errorf("WAL stream: %w", err)
		}
		if r.reachedStop() { // Stop may have raced the deadline above
			return 0, 0, r.finishSegment()
		}
		msg, err := r.conn.ReceiveMessage(context.Background())
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if err := r.sendStatus(); err != nil {
					return 0, 0, err
				}
				lastStatus = time.Now()
				continue
			}
			return 0, 0, fmt.Errorf("WAL stream from %s on timeline %d: %w", r.written, tli, err)
		}
		switch m := msg.(type) {
		case *pgproto3.CopyBothResponse:
			copying = true
		case *pgproto3.CopyData:
			reply, err := r.handle(m.Data)
			if err != nil {
				return 0, 0, err
			}
			if reply || time.Since(lastStatus) >= r.opt.StatusInterval {
				if err := r.sendStatus(); err != nil {
					return 0, 0, err
				}
				lastStatus = time.Now()
			}
		case *pgproto3.CopyDone:
			// The server ended this timeline: acknowledge, then read where the next one starts.
			if !copying {
				return 0, 0, errors.New("WAL stream: CopyDone before the stream started")
			}
			if err := r.finishSegment(); err != nil {
				return 0, 0, err
			}
			fe.Send(&pgproto3.CopyDone{})
			if err := fe.Flush(); err != nil {
				return 0, 0, fmt.Errorf("WAL stream: %w", err)
			}
			return r.nextTimeline(tli)
		case *pgproto3.ErrorResponse:
			return 0, 0, fmt.Errorf("WAL stream from %s on timeline %d: primary: %w", pos, tli, pgconn.ErrorResponseToPgError(m))
		case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
		default:
			return 0, 0, fmt.Errorf("WAL stream: unexpected message %T", msg)
		}
	}
}

// pauseAtZeros stops reading for a while after WAL that ended in an all-zero
// page: the rest of a segment after a WAL switch, which the primary sends at
// full speed the moment a backup ends (do_pg_backup_stop switches), while the
// stop position is still on its way over the other connection. Not reading
// lets TCP hold the tail back instead of carrying up to a whole segment of
// zeros. It only waits, for Stop or ZeroPause, and never skips WAL: a zero
// page that is no switch's tail costs that wait and nothing else.
func (r *Receiver) pauseAtZeros() {
	if !r.zeroSeen || r.seg == nil || r.seg.start == r.pausedSeg {
		return
	}
	r.zeroSeen, r.pausedSeg = false, r.seg.start
	t := time.NewTimer(r.opt.ZeroPause)
	defer t.Stop()
	select {
	case <-r.stopped:
	case <-r.cancelled:
	case <-t.C:
	}
}

func (r *Receiver) reachedStop() bool {
	stop := r.stop.Load()
	return stop != 0 && r.written >= wal.LSN(stop)
}

// handle writes one message's WAL, reporting whether the server asked for a reply.
func (r *Receiver) handle(p []byte) (bool, error) {
	m, err := decode(p)
	if err != nil {
		return false, err
	}
	if m.Type == 'k' {
		return m.k.ReplyRequested, nil
	}
	if m.w.Start != r.written {
		return false, fmt.Errorf("WAL stream: got WAL at %s, want %s (gap or overlap)", m.w.Start, r.written)
	}
	r.zeroSeen = endsInZeroPage(m.w.Start, m.w.Data)
	return false, r.write(m.w.Start, m.w.Data)
}

// walPage is XLOG_BLCKSZ as PostgreSQL is built by default. Every WAL page
// it writes begins with a header, so a flushed page of zeros is the filler
// after a switch (or, with larger WAL pages, data: pauseAtZeros only waits).
const walPage = 8192

var zeroPage [walPage]byte

// endsInZeroPage reports whether the last whole page-aligned page of data,
// which starts at lsn, is all zeros.
func endsInZeroPage(lsn wal.LSN, data []byte) bool {
	end := uint64(lsn) + uint64(len(data))
	last := end &^ (walPage - 1)
	if last < uint64(lsn)+walPage {
		return false
	}
	off := last - walPage - uint64(lsn)
	return bytes.Equal(data[off:off+walPage], zeroPage[:])
}

// write splits WAL at segment boundaries; a full segment is made durable at once.
func (r *Receiver) write(lsn wal.LSN, data []byte) error {
	segSize := wal.LSN(r.opt.SegmentSize)
	for len(data) > 0 {
		if r.seg == nil {
			seg, err := createSegment(r.opt.Dir, r.tli, lsn, r.opt.SegmentSize, r.opt.FileMode)
			if err != nil {
				return err
			}
			r.seg = seg
		}
		n := min(wal.LSN(len(data)), r.seg.start+segSize-lsn)
		if err := r.seg.write(lsn, data[:n]); err != nil {
			return err
		}
		lsn += n
		data = data[n:]
		r.written = lsn
		if lsn == r.seg.start+segSize {
			if err := r.finishSegment(); err != nil {
				return err
			}
		}
	}
	return nil
}

// finishSegment makes the current segment durable under its final name.
func (r *Receiver) finishSegment() error {
	if r.seg != nil {
		seg := r.seg
		r.seg = nil
		if err := seg.finish(); err != nil {
			return err
		}
	}
	r.flushed.Store(uint64(r.written))
	rg := r.ranges[r.tli]
	r.ranges[r.tli] = [2]wal.LSN{rg[0], r.written}
	return nil
}

// sendStatus makes written WAL durable and reports it, so the primary (and
// its slot) knows what it may recycle and the sender does not time out.
func (r *Receiver) sendStatus() error {
	if r.seg != nil {
		if err := r.seg.sync(); err != nil {
			return err
		}
		r.flushed.Store(uint64(r.written))
	}
	fe := r.conn.Frontend()
	fe.Send(&pgproto3.CopyData{Data: statusUpdate(r.written, r.Flushed(), time.Now())})
	if err := fe.Flush(); err != nil {
		return fmt.Errorf("WAL stream: send status: %w", err)
	}
	return nil
}

// nextTimeline reads the result set that follows the end of a timeline.
func (r *Receiver) nextTimeline(tli uint32) (uint32, wal.LSN, error) {
	rows, err := replconn.ReadResult(r.conn)
	if err != nil {
		return 0, 0, fmt.Errorf("WAL stream: end of timeline %d: %w", tli, err)
	}
	if len(rows) != 1 || len(rows[0]) < 2 {
		return 0, 0, fmt.Errorf("WAL stream: end of timeline %d without a next timeline (the primary was shut down?)", tli)
	}
	next, err := strconv.ParseUint(string(rows[0][0]), 10, 32)
	if err != nil || uint32(next) <= tli {
		return 0, 0, fmt.Errorf("WAL stream: bad next timeline %q after %d", rows[0][0], tli)
	}
	pos, err := wal.ParseLSN(string(rows[0][1]))
	if err != nil {
		return 0, 0, fmt.Errorf("WAL stream: next timeline start: %w", err)
	}
	return uint32(next), pos, nil
}
