package basebackup

import (
	"context"
	"fmt"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Conn is a replication connection taken over from pgconn for BASE_BACKUP,
// so that archive bytes are read from the socket straight into the chain's
// buffers: pgconn reads every message whole into its own. Messages are
// still pgproto3's types; only the framing is ours (wire).
type Conn struct {
	nc net.Conn
	w  *wire
	// notice is the connection's OnNotice, or nil; it gets a nil *PgConn,
	// the connection being pgconn's no more.
	notice func(*pgconn.PgConn, *pgconn.Notice)
}

// Hijack takes conn over; conn is closed for pgconn from then on, and the
// caller closes the Conn. conn must be idle: SyncConn makes sure nothing
// is left in pgconn's buffers or background reader.
func Hijack(ctx context.Context, conn *pgconn.PgConn) (*Conn, error) {
	// A background read pgconn left running (after a slow write) ends
	// with the ping SyncConn sends; that ping may fail on a physical
	// replication connection, and a second SyncConn then finds all quiet.
	if err := conn.SyncConn(ctx); err != nil {
		if err := conn.SyncConn(ctx); err != nil {
			return nil, fmt.Errorf("take over the replication connection: %w", err)
		}
	}
	hc, err := conn.Hijack()
	if err != nil {
		return nil, fmt.Errorf("take over the replication connection: %w", err)
	}
	return &Conn{nc: hc.Conn, w: newWire(hc.Conn), notice: hc.Config.OnNotice}, nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.nc.Close() }

// query sends a simple query.
func (c *Conn) query(sql string) error {
	buf, err := (&pgproto3.Query{String: sql}).Encode(nil)
	if err != nil {
		return err
	}
	_, err = c.nc.Write(buf)
	return err
}

// decodeBackend decodes a body of the message types BASE_BACKUP's answer
// may hold, as pgproto3 does; any other type breaks the protocol.
func decodeBackend(typ byte, body []byte) (pgproto3.BackendMessage, error) {
	var msg pgproto3.BackendMessage
	switch typ {
	case 'T':
		msg = &pgproto3.RowDescription{}
	case 'D':
		msg = &pgproto3.DataRow{}
	case 'C':
		msg = &pgproto3.CommandComplete{}
	case 'N':
		msg = &pgproto3.NoticeResponse{}
	case 'S':
		msg = &pgproto3.ParameterStatus{}
	case 'H':
		msg = &pgproto3.CopyOutResponse{}
	case 'd':
		msg = &pgproto3.CopyData{}
	case 'c':
		msg = &pgproto3.CopyDone{}
	case 'E':
		msg = &pgproto3.ErrorResponse{}
	case 'Z':
		msg = &pgproto3.ReadyForQuery{}
	default:
		return nil, Violation("unexpected message type %q", typ)
	}
	if err := msg.Decode(body); err != nil {
		return nil, Violation("malformed %T message: %v", msg, err)
	}
	return msg, nil
}
