package replconn

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg-standby/pg-standby/internal/printable"
	"github.com/pg-standby/pg-standby/internal/redact"
)

// ParseConninfo parses a libpq conninfo the way pgconn (and so libpq's
// environment and passfile rules) does, for a physical replication connection.
func ParseConninfo(conninfo string) (*pgconn.Config, error) {
	cfg, err := pgconn.ParseConfig(conninfo)
	if err != nil {
		return nil, &ConninfoError{conninfo: conninfo, err: err}
	}
	cfg.RuntimeParams["replication"] = "true"
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "pg-standby"
	}
	return cfg, nil
}

// ConninfoError is a conninfo pgconn cannot parse. Its message shows the
// conninfo with every password redacted, in any form (pgconn's own message
// misses some, e.g. password = 'a b'); it has no Unwrap, so that nothing
// prints the cause's text by accident.
type ConninfoError struct {
	conninfo string
	err      error
}

func (e *ConninfoError) Error() string {
	reason := e.err.Error()
	// pgconn words it "cannot parse `CONNINFO`: REASON"; keep only the reason.
	if i := strings.LastIndex(reason, "`: "); strings.HasPrefix(reason, "cannot parse `") && i >= 0 {
		reason = reason[i+3:]
	}
	return "cannot parse " + redact.Conninfo(e.conninfo) + ": " + redact.Text(reason)
}

// MaxMessageBody bounds the body of one protocol message from the primary.
// pgproto3 allocates a buffer of the announced length before the body
// arrives, and its own default limit is 1 GiB: a broken or hostile server
// could make each connection hold that much. PostgreSQL's largest messages
// on these connections are far smaller: BASE_BACKUP's CopyData carries at
// most one sink buffer (32 kB, about 128 kB after zstd's output buffer),
// XLogData at most MAX_SEND_SIZE (16 WAL pages, 128 kB by default, 1 MiB
// with the largest XLOG_BLCKSZ), and TIMELINE_HISTORY's one row a history
// file of a few hundred bytes per timeline. 16 MiB leaves ample room.
const MaxMessageBody = 16 << 20

// Connect opens one replication connection; the primary's notices (warnings)
// go to log. Messages from the primary larger than MaxMessageBody fail.
func Connect(ctx context.Context, cfg *pgconn.Config, log *slog.Logger) (*pgconn.PgConn, error) {
	cfg = cfg.Copy()
	cfg.MaxProtocolMessageBodyLen = MaxMessageBody
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		log.Warn("primary: "+printable.Escape(n.Message), "severity", n.Severity, "sqlstate", n.Code, "detail", printable.Escape(n.Detail))
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, &ConnectError{Addr: Address(cfg), Err: err}
	}
	return conn, nil
}

// ConnectError is a failed connection to the primary, said in one line
// (Reason): the journal and systemctl status show one line.
type ConnectError struct {
	Addr string
	Err  error
}

func (e *ConnectError) Error() string {
	return "cannot connect to the primary " + e.Addr + ": " + Reason(e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// Address is host:port of the primary, for messages (never the password).
func Address(cfg *pgconn.Config) string {
	return fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
}
