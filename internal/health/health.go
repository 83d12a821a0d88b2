package health

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Report is a standby's health. Field names are part of `status --json`
// (the "health" object); fields are only ever added.
type Report struct {
	// Postmaster is "running", "starting", "stopping" or "not-running".
	Postmaster  string   `json:"postmaster"`
	PID         int      `json:"postmaster_pid,omitempty"`
	InRecovery  *bool    `json:"in_recovery,omitempty"`
	Streaming   bool     `json:"streaming"`
	WALReceiver string   `json:"wal_receiver,omitempty"` // pg_stat_wal_receiver.status
	Sender      string   `json:"sender,omitempty"`       // host:port the walreceiver is connected to
	ReceiveLSN  string   `json:"receive_lsn,omitempty"`
	ReplayLSN   string   `json:"replay_lsn,omitempty"`
	PrimaryLSN  string   `json:"primary_lsn,omitempty"` // the primary's WAL end as last reported to the walreceiver
	LagBytes    *int64   `json:"lag_bytes,omitempty"`   // replay behind the primary, while streaming
	LagSeconds  *float64 `json:"lag_seconds,omitempty"` // the same in time (see stateQuery)
	// WALRemoved: the primary no longer has the WAL the standby needs
	// (SQLSTATE 58P01 to START_REPLICATION at the standby's position).
	WALRemoved bool `json:"wal_removed,omitempty"`
	// Reason is why the standby does not stream, when it does not.
	Reason string `json:"reason,omitempty"`
	// ServerLog is the last FATAL line of the server's log, when readable.
	ServerLog string `json:"server_log,omitempty"`
}

// Probe inspects the standby in dataDir. It never fails: what it cannot
// find out is said in Reason. logFile, if not "", is where the server logs
// when it is not running (Debian's pg_ctlcluster: /var/log/postgresql/
// postgresql-VERSION-CLUSTER.log): its last FATAL line says why it stopped.
func Probe(ctx context.Context, dataDir, logFile string) Report {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pm, err := readPostmaster(dataDir)
	if err != nil {
		r := Report{Postmaster: "not-running", Reason: err.Error()}
		if logFile != "" {
			if f, err := os.OpenFile(logFile, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
				r.ServerLog = lastFatalIn(f)
				f.Close()
			}
		}
		return r
	}
	r := Report{Postmaster: "running", PID: pm.pid, ServerLog: lastFatal(pm.pid)}
	switch pm.status {
	case "starting", "stopping":
		r.Postmaster = pm.status
		r.Reason = "postgres is " + pm.status + " (not accepting connections yet)"
		return r
	}
	if pm.socketDir == "" {
		r.Reason = "postgres listens on no unix socket (unix_socket_directories is empty): cannot ask it"
		return r
	}
	conn, err := connectLocal(ctx, pm)
	var pgErr *pgconn.PgError
	if err != nil && pm.unverified && !errors.As(err, &pgErr) { // a server that answers with an error runs
		return Report{Postmaster: "not-running", Reason: fmt.Sprintf("postgres is not running (postmaster.pid names pid %d, which cannot be examined here, and nothing answers on its socket: %v)", pm.pid, err)}
	}
	if err != nil {
		r.Reason = "cannot ask postgres over its socket: " + err.Error()
		return r
	}
	defer conn.Close(context.Background())
	q, err := query(ctx, conn)
	if err != nil {
		r.Reason = err.Error()
		return r
	}
	if pm.unverified && !servesDir(ctx, conn, dataDir) {
		return Report{Postmaster: "not-running", Reason: stalePID(pm.pid, dataDir).Error()}
	}
	q.fill(&r)
	if r.Streaming || !*r.InRecovery {
		if !*r.InRecovery {
			r.Reason = "not in recovery: this server was promoted, it is no standby"
		}
		return r
	}
	r.Reason = whyNotStreaming(ctx, q, &r)
	return r
}

// connectLocal connects to the postmaster's socket as the current user
// (the data directory's owner, the superuser of an initdb'd cluster).
func connectLocal(ctx context.Context, pm postmaster) (*pgconn.PgConn, error) {
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	cfg, err := pgconn.ParseConfig("sslmode=disable connect_timeout=5")
	if err != nil {
		return nil, err
	}
	cfg.Host, cfg.Port, cfg.User, cfg.Database = pm.socketDir, uint16(pm.port), u.Username, "postgres"
	cfg.Fallbacks = nil
	cfg.RuntimeParams = map[string]string{"application_name": "pg-standby status"}
	return pgconn.ConnectConfig(ctx, cfg)
}

// state is the standby's answer to stateQuery.
type state struct {
	inRecovery                     bool
	receive, replay, status        string
	sender, primaryLSN             string
	lagBytes, lagSeconds           string
	primaryConninfo, slot, segSize string
}

// stateQuery: pg_stat_wal_receiver has no row while no walreceiver runs.
// The lag is behind the primary's WAL end as last reported to the
// walreceiver (the WAL received before the first report); in seconds, that
// of the last replayed transaction, 0 when replay has caught up.
const stateQuery = `SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn(),
 r.status, r.sender_host || ':' || r.sender_port, r.latest_end_lsn,
 GREATEST(COALESCE(r.latest_end_lsn, pg_last_wal_receive_lsn()) - pg_last_wal_replay_lsn(), 0),
 CASE WHEN pg_last_wal_replay_lsn() >= COALESCE(r.latest_end_lsn, pg_last_wal_receive_lsn()) THEN 0
      ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END,
 current_setting('primary_conninfo'), current_setting('primary_slot_name'),
 (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size')
FROM (SELECT 1) one LEFT JOIN pg_stat_wal_receiver r ON true`

func query(ctx context.Context, conn *pgconn.PgConn) (state, error) {
	res := conn.ExecParams(ctx, stateQuery, nil, nil, nil, nil).Read()
	if res.Err != nil {
		return state{}, fmt.Errorf("query the standby: %w", res.Err)
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 11 {
		return state{}, errors.New("query the standby: unexpected result")
	}
	v := func(i int) string { return string(res.Rows[0][i]) }
	return state{
		inRecovery: v(0) == "t", receive: v(1), replay: v(2), status: v(3), sender: v(4), primaryLSN: v(5),
		lagBytes: v(6), lagSeconds: v(7), primaryConninfo: v(8), slot: v(9), segSize: v(10),
	}, nil
}

func (q state) fill(r *Report) {
	r.InRecovery = &q.inRecovery
	r.ReceiveLSN, r.ReplayLSN, r.PrimaryLSN, r.WALReceiver, r.Sender = q.receive, q.replay, q.primaryLSN, q.status, q.sender
	r.Streaming = q.inRecovery && q.status == "streaming"
	if !r.Streaming {
		return // the lag behind the primary is not known
	}
	if n, err := strconv.ParseInt(q.lagBytes, 10, 64); err == nil {
		r.LagBytes = &n
	}
	if f, err := strconv.ParseFloat(q.lagSeconds, 64); err == nil {
		f = float64(int64(f*1000)) / 1000
		r.LagSeconds = &f
	}
}

// whyNotStreaming asks the primary, as primary_conninfo says, for the WAL
// the standby needs next: the answer (a connection error, SQLSTATE 58P01
// for removed WAL) is the reason when the walreceiver cannot stream.
func whyNotStreaming(ctx context.Context, q state, r *Report) string {
	status := "no WAL receiver running"
	if q.status != "" {
		status = "WAL receiver " + q.status
	}
	if strings.TrimSpace(q.primaryConninfo) == "" {
		return status + ": primary_conninfo is empty"
	}
	err := checkPrimary(ctx, q)
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &pe) && pe.Code == "58P01":
		r.WALRemoved = true
		return "WAL removed on the primary: " + pe.Message
	case err != nil:
		return status + "; " + err.Error()
	case r.ServerLog != "":
		return status + "; the primary serves the WAL needed; server log: " + r.ServerLog
	}
	return status + "; the primary serves the WAL needed"
}

// servesDir: the server on the socket says its data directory is dataDir;
// true when it may not say (data_directory is for superusers and
// pg_read_all_settings): its pid lives and it answered on the socket
// postmaster.pid names.
func servesDir(ctx context.Context, conn *pgconn.PgConn, dataDir string) bool {
	res := conn.ExecParams(ctx, "SELECT current_setting('data_directory')", nil, nil, nil, nil).Read()
	if res.Err != nil || len(res.Rows) != 1 || len(res.Rows[0]) != 1 {
		return true
	}
	return sameDir(string(res.Rows[0][0]), dataDir)
}
