package replconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg-standby/pg-standby/internal/printable"
	"github.com/pg-standby/pg-standby/internal/redact"
)

// ParseConninfo parses a libpq conninfo for a physical replication
// connection that behaves as the walreceiver's libpq connection will: pgconn
// parses it (environment, service file, passfile, TLS), and the keys pgconn
// does not know are applied here instead of being sent to the server as
// settings (see libpq.go).
func ParseConninfo(conninfo string) (*pgconn.Config, error) {
	cfg, err := pgconn.ParseConfig(conninfo)
	if err != nil {
		// libpq looks a service up in the user's file, then in the system's.
		if sys, ok := systemServiceFile(conninfo); ok {
			if c, serr := pgconn.ParseConfig(withKey(conninfo, "servicefile", sys)); serr == nil {
				cfg, err = c, nil
			}
		}
	}
	if err != nil {
		return nil, &ConninfoError{conninfo: conninfo, err: err}
	}
	if err := applyLibpq(cfg); err != nil {
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
	if err != nil && isPreferStandby(cfg) && errors.Is(err, ErrNotStandby) {
		cfg.ValidateConnect = nil
		conn, err = pgconn.ConnectConfig(ctx, cfg)
	}
	if err != nil {
		return nil, &ConnectError{Addr: Addresses(cfg), Err: err}
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

// Address is host:port of the primary, for messages (never the password);
// with several hosts, the first.
func Address(cfg *pgconn.Config) string {
	return fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
}

// Addresses lists every host:port the conninfo names, for messages.
func Addresses(cfg *pgconn.Config) string {
	list := []string{Address(cfg)}
	for _, fb := range cfg.Fallbacks {
		a := fmt.Sprintf("%s:%d", fb.Host, fb.Port)
		if list[len(list)-1] != a {
			list = append(list, a)
		}
	}
	return strings.Join(list, ",")
}

// Pin returns cfg narrowed to the server conn reached, so that a second
// connection (for WAL) goes to the same server whatever the host list,
// load balancing or target_session_attrs would pick now.
func Pin(cfg *pgconn.Config, conn *pgconn.PgConn) *pgconn.Config {
	pinned := cfg.Copy()
	pinned.ValidateConnect = nil // the server was checked a moment ago
	all := append([]*pgconn.FallbackConfig{{Host: cfg.Host, Port: cfg.Port, TLSConfig: cfg.TLSConfig}}, cfg.Fallbacks...)
	remote := conn.Conn().RemoteAddr()
	var keep []*pgconn.FallbackConfig
	if tcp, ok := remote.(*net.TCPAddr); ok {
		ip := tcp.IP.String()
		for _, fb := range all {
			if int(fb.Port) == tcp.Port && !strings.HasPrefix(fb.Host, "/") {
				keep = append(keep, fb)
			}
		}
		lookup := cfg.LookupFunc
		pinned.LookupFunc = func(ctx context.Context, host string) ([]string, error) {
			addrs, err := lookup(ctx, host)
			for _, a := range addrs {
				if net.ParseIP(a).Equal(tcp.IP) {
					return []string{ip}, nil
				}
			}
			return nil, errors.Join(err, fmt.Errorf("%s no longer resolves to %s", host, ip))
		}
	} else {
		for _, fb := range all {
			if network, addr := pgconn.NetworkAddress(fb.Host, fb.Port); network == "unix" && addr == remote.String() {
				keep = append(keep, fb)
			}
		}
	}
	if len(keep) == 0 {
		return pinned // cannot tell: leave the list as it is
	}
	pinned.Host, pinned.Port, pinned.TLSConfig, pinned.Fallbacks = keep[0].Host, keep[0].Port, keep[0].TLSConfig, keep[1:]
	return pinned
}
