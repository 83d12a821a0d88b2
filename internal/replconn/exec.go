package replconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Exec runs one replication command and returns the rows of its last result
// set (values copied). ctx cancels it by closing the connection.
func Exec(ctx context.Context, conn *pgconn.PgConn, cmd string) ([][][]byte, error) {
	stop := context.AfterFunc(ctx, func() { conn.Conn().Close() })
	defer stop()
	fe := conn.Frontend()
	fe.Send(&pgproto3.Query{String: cmd})
	if err := fe.Flush(); err != nil {
		return nil, CtxErr(ctx, err)
	}
	rows, err := ReadResult(conn)
	return rows, CtxErr(ctx, err)
}

// CtxErr returns err, or with ctx done, ctx's cause wrapping err's text:
// a connection closed to cancel fails with the cancellation's reason.
func CtxErr(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", context.Cause(ctx), err)
	}
	return err
}

// ReadResult reads messages until ReadyForQuery and returns the rows of the
// last result set. A read deadline that expires is cleared and the read goes
// on: deadlines are only used to wake streaming loops.
func ReadResult(conn *pgconn.PgConn) ([][][]byte, error) {
	var rows [][][]byte
	var firstErr error
	for {
		msg, err := conn.ReceiveMessage(context.Background())
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if err := conn.Conn().SetReadDeadline(time.Time{}); err != nil {
					return nil, err
				}
				continue
			}
			return nil, err
		}
		switch m := msg.(type) {
		case *pgproto3.RowDescription:
			rows = nil
		case *pgproto3.DataRow:
			row := make([][]byte, len(m.Values))
			for i, v := range m.Values {
				if v != nil {
					row[i] = append([]byte{}, v...)
				}
			}
			rows = append(rows, row)
		case *pgproto3.ErrorResponse:
			if firstErr == nil {
				firstErr = fmt.Errorf("primary: %w", pgconn.ErrorResponseToPgError(m))
			}
		case *pgproto3.ReadyForQuery:
			return rows, firstErr
		}
	}
}
