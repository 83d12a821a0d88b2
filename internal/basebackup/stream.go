package basebackup

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pg-standby/pg-standby/internal/replconn"
	"github.com/pg-standby/pg-standby/internal/wal"
)

// Tablespace is one row of the second result set. The base directory is the
// row whose OID is NULL; it is reported with OID 0 and an empty Location.
type Tablespace struct {
	OID      uint32
	Location string
	// SizeKB is the server's estimate in kB, -1 when unknown.
	SizeKB int64
}

// Started is what the server reports before the COPY stream begins.
type Started struct {
	LSN         wal.LSN
	Timeline    uint32
	Tablespaces []Tablespace
}

// End is the result set sent after CopyDone.
type End struct {
	LSN      wal.LSN
	Timeline uint32
}

// ChecksumFailureError is the server's XX001 error: data checksum failures
// were found while reading the primary's files. The backup is not usable.
type ChecksumFailureError struct{ Err *pgconn.PgError }

func (e *ChecksumFailureError) Error() string {
	return "the primary found data checksum failures while sending the backup (" + e.Err.Message +
		"); see the primary's log for the damaged files; the copy is not usable"
}
func (e *ChecksumFailureError) Unwrap() error { return e.Err }

// Backup is one BASE_BACKUP between Start, which read where it starts, and
// Stream, which receives it.
type Backup struct {
	Started
	conn   *Conn
	method string // server-side compression, "" for none
	r      reader
}

// Start sends BASE_BACKUP on a replication connection and reads up to the
// start of the COPY stream. ctx cancels by closing the connection. After a
// server error (the Backup is nil) the connection is idle again and may
// start another.
func Start(ctx context.Context, conn *Conn, opts Options) (*Backup, error) {
	cmd, err := opts.Command()
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := conn.query(cmd); err != nil {
		return nil, replconn.CtxErr(ctx, fmt.Errorf("send BASE_BACKUP: %w", err))
	}
	b := &Backup{conn: conn, method: opts.Compression}
	b.r.notice = conn.notice
	b.r.data.w = conn.w
	if err := b.r.receive(ctx, conn, func() bool { return b.r.copying }); err != nil {
		return nil, err
	}
	if b.r.err != nil {
		return nil, b.r.err
	}
	if !b.r.copying {
		return nil, Violation("the server finished without reporting the end position")
	}
	b.Started = b.r.start
	return b, nil
}

// Stream receives the archives and the manifest into to, and returns the
// end position. Every chain to gives is closed before Stream returns.
func (b *Backup) Stream(ctx context.Context, to Receiver) (_ End, err error) {
	stop := context.AfterFunc(ctx, func() { b.conn.Close() })
	defer stop()
	b.r.demux = demux{to: to, tablespaces: b.Tablespaces, suffix: suffixes[b.method], archives: map[string]bool{}}
	defer func() {
		if cerr := b.r.demux.closeChain(); err == nil {
			err = cerr
		}
	}()
	if err := b.r.receive(ctx, b.conn, nil); err != nil {
		return End{}, err
	}
	if b.r.err != nil {
		return End{}, b.r.err
	}
	if !b.r.ended {
		return End{}, Violation("the server finished without reporting the end position")
	}
	if err := b.r.demux.closeChain(); err != nil {
		return End{}, err
	}
	if !b.r.demux.inManifest {
		return End{}, Violation("the server sent no manifest")
	}
	return b.r.end, nil
}

// reader is the state machine over the backend messages of one BASE_BACKUP.
type reader struct {
	demux   demux
	data    payload // the archive data message being read
	notice  func(*pgconn.PgConn, *pgconn.Notice)
	sets    [][][]*string // result sets before/after COPY; values copied
	copying bool
	copied  bool
	start   Started
	end     End
	ended   bool
	done    bool
	err     error // server error; reading continues to ReadyForQuery
}

// receive handles backend messages until ReadyForQuery, or until pause
// (when not nil) says to stop.
func (r *reader) receive(ctx context.Context, conn *Conn, pause func() bool) error {
	for !r.done && (pause == nil || !pause()) {
		if err := r.step(conn.w); err != nil {
			return replconn.CtxErr(ctx, err)
		}
	}
	return nil
}

// step reads one message. The body of archive data is left on the wire for
// the chain to read where it keeps it (demux.data); any other body is read
// whole and decoded into pgproto3's types.
func (r *reader) step(w *wire) error {
	typ, n, err := w.header()
	if err != nil {
		return fmt.Errorf("receive base backup stream: %w", err)
	}
	if typ == 'd' && r.copying && n > 1 {
		tag, err := w.peek()
		if err != nil {
			return fmt.Errorf("receive base backup stream: %w", err)
		}
		if tag == 'd' {
			w.skip(1) // the tag, in the read-ahead since peek
			r.data.n = n - 1
			if err := r.demux.data(&r.data); err != nil {
				return err
			}
			return nil
		}
	}
	body, err := w.wholeBody(n)
	if err != nil {
		return fmt.Errorf("receive base backup stream: %w", err)
	}
	msg, err := decodeBackend(typ, body)
	if err != nil {
		return err
	}
	return r.handle(msg)
}

func (r *reader) handle(msg pgproto3.BackendMessage) error {
	switch m := msg.(type) {
	case *pgproto3.RowDescription:
		r.sets = append(r.sets, nil)
	case *pgproto3.DataRow:
		return r.row(m)
	case *pgproto3.NoticeResponse:
		if r.notice != nil {
			r.notice(nil, (*pgconn.Notice)(pgconn.ErrorResponseToPgError((*pgproto3.ErrorResponse)(m))))
		}
	case *pgproto3.CommandComplete, *pgproto3.ParameterStatus:
	case *pgproto3.CopyOutResponse:
		return r.copyStart()
	case *pgproto3.CopyData:
		if !r.copying {
			return Violation("CopyData outside the COPY stream")
		}
		dm, err := Decode(m.Data)
		if err != nil {
			return err
		}
		return r.demux.message(dm)
	case *pgproto3.CopyDone:
		if !r.copying {
			return Violation("CopyDone outside the COPY stream")
		}
		r.copying, r.copied = false, true
	case *pgproto3.ErrorResponse:
		r.serverError(m)
	case *pgproto3.ReadyForQuery:
		return r.ready()
	default:
		return Violation("unexpected message %T", msg)
	}
	return nil
}

func (r *reader) row(m *pgproto3.DataRow) error {
	if len(r.sets) == 0 {
		return Violation("data row before row description")
	}
	row := make([]*string, len(m.Values))
	for i, v := range m.Values {
		if v != nil {
			s := string(v)
			row[i] = &s
		}
	}
	r.sets[len(r.sets)-1] = append(r.sets[len(r.sets)-1], row)
	return nil
}

func (r *reader) copyStart() error {
	if r.copying || r.copied {
		return Violation("a second COPY stream (server older than PostgreSQL 15?)")
	}
	start, err := parseStart(r.sets)
	if err != nil {
		return err
	}
	r.start, r.sets, r.copying = start, nil, true
	return nil
}

func (r *reader) serverError(m *pgproto3.ErrorResponse) {
	pgErr := pgconn.ErrorResponseToPgError(m)
	if pgErr.Code == "XX001" {
		r.err = &ChecksumFailureError{Err: pgErr}
	} else if r.err == nil {
		r.err = fmt.Errorf("primary: %w", pgErr)
	}
}

func (r *reader) ready() error {
	r.done = true
	if r.err == nil && r.copied {
		end, err := parseEnd(r.sets)
		if err != nil {
			return err
		}
		r.end, r.ended = end, true
	}
	return nil
}

func parseStart(sets [][][]*string) (Started, error) {
	if len(sets) != 2 || len(sets[0]) != 1 || len(sets[0][0]) != 2 {
		return Started{}, Violation("want a start position and a tablespace list before the COPY stream, got %d result sets", len(sets))
	}
	lsn, tli, err := parsePosition(sets[0][0])
	if err != nil {
		return Started{}, fmt.Errorf("base backup start: %w", err)
	}
	s := Started{LSN: lsn, Timeline: tli}
	for _, row := range sets[1] {
		if len(row) != 3 {
			return Started{}, fmt.Errorf("base backup tablespace list: row of %d columns, want 3", len(row))
		}
		ts := Tablespace{SizeKB: -1}
		if row[0] != nil {
			oid, err := strconv.ParseUint(*row[0], 10, 32)
			if err != nil || oid == 0 {
				return Started{}, fmt.Errorf("base backup tablespace list: bad OID %q", *row[0])
			}
			if row[1] == nil || *row[1] == "" {
				return Started{}, fmt.Errorf("base backup tablespace list: tablespace %d has no location", oid)
			}
			ts.OID, ts.Location = uint32(oid), *row[1]
		}
		if row[2] != nil {
			n, err := strconv.ParseInt(*row[2], 10, 64)
			if err != nil || n < 0 {
				return Started{}, fmt.Errorf("base backup tablespace list: bad size %q", *row[2])
			}
			ts.SizeKB = n
		}
		s.Tablespaces = append(s.Tablespaces, ts)
	}
	return s, nil
}

func parseEnd(sets [][][]*string) (End, error) {
	if len(sets) != 1 || len(sets[0]) != 1 || len(sets[0][0]) != 2 {
		return End{}, Violation("want one end position after the COPY stream, got %d result sets", len(sets))
	}
	lsn, tli, err := parsePosition(sets[0][0])
	if err != nil {
		return End{}, fmt.Errorf("base backup end: %w", err)
	}
	return End{LSN: lsn, Timeline: tli}, nil
}

func parsePosition(row []*string) (wal.LSN, uint32, error) {
	if row[0] == nil || row[1] == nil {
		return 0, 0, errors.New("NULL position")
	}
	lsn, err := wal.ParseLSN(*row[0])
	if err != nil {
		return 0, 0, err
	}
	tli, err := strconv.ParseUint(*row[1], 10, 32)
	if err != nil || tli == 0 {
		return 0, 0, fmt.Errorf("bad timeline %q", *row[1])
	}
	return lsn, uint32(tli), nil
}
