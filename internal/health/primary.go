package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pg-standby/pg-standby/internal/replconn"
	"github.com/pg-standby/pg-standby/internal/wal"
)

// checkPrimary connects to the primary as the walreceiver would and asks
// for WAL from the start of the segment the standby replays. The walsender
// starts the stream before it reads WAL, so the answer is the first message
// in it: WAL (nil), or an error (a *pgconn.PgError: SQLSTATE 58P01 when the
// segment was removed); no message within a few seconds is nil as well.
// The connection's error when it cannot connect. No slot is used, so
// nothing on the primary changes.
func checkPrimary(ctx context.Context, q state) error {
	cfg, err := replconn.ParseConninfo(q.primaryConninfo)
	if err != nil {
		return fmt.Errorf("primary_conninfo: %w", err)
	}
	replay, err := wal.ParseLSN(q.replay)
	if err != nil {
		return fmt.Errorf("replay position %q: %w", q.replay, err)
	}
	seg, err := strconv.ParseInt(q.segSize, 10, 64)
	if err != nil || !wal.ValidSegmentSize(seg) {
		return fmt.Errorf("wal_segment_size %q", q.segSize)
	}
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > 5*time.Second {
		cfg.ConnectTimeout = 5 * time.Second
	}
	conn, err := replconn.Connect(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	fe := conn.Frontend()
	fe.Send(&pgproto3.Query{String: fmt.Sprintf("START_REPLICATION PHYSICAL %s", wal.SegmentStart(replay, seg))})
	if err := fe.Flush(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	for {
		msg, err := conn.ReceiveMessage(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *pgproto3.ErrorResponse:
			return pgconn.ErrorResponseToPgError(m)
		case *pgproto3.CopyData:
			if len(m.Data) > 0 && m.Data[0] == 'w' {
				return nil
			}
		case *pgproto3.ReadyForQuery:
			return errors.New("START_REPLICATION: the primary sent no stream")
		}
	}
}
