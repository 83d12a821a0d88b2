package backup

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg-standby/pg-standby/internal/replconn"
)

// diagnose sorts a failure whose SQLSTATE has several causes by facts read
// from the server: the phase it came in, the timeline before and after, the
// settings. The message text is never read (it follows the primary's
// lc_messages). main is the attempt's connection, nil if it failed to open.
func (b *attempt) diagnose(ctx context.Context, err error, main *pgconn.PgConn) error {
	var pgErr *pgconn.PgError
	if err == nil || !errors.As(err, &pgErr) {
		return err
	}
	switch pgErr.Code {
	case "55000": // object_not_in_prerequisite_state
		if b.started != nil {
			if perr := b.promoted(ctx, err, main); perr != nil {
				return perr
			}
		}
		if v, ok := b.show(ctx, main, "wal_level"); ok && v == "minimal" {
			return &SettingError{Setting: "wal_level", Value: v, Err: err,
				Fix: "set wal_level = replica (or logical) on the primary and restart it"}
		}
	case "53400": // configuration_limit_exceeded: no slot free, or none configured
		if v, ok := b.show(ctx, main, "max_replication_slots"); ok && v == "0" {
			return &SettingError{Setting: "max_replication_slots", Value: v, Err: err,
				Fix: "set max_replication_slots to 1 or more on the primary and restart it (the backup uses a temporary slot)"}
		}
	case "53300": // too_many_connections: max_connections or max_wal_senders
		n, ok := b.walSenders(ctx, main, pgErr)
		if ok && n < 2 {
			return &SettingError{Setting: "max_wal_senders", Value: strconv.Itoa(n), Err: err,
				Fix: "the backup needs 2 WAL senders (data and WAL), and the standby one more: raise max_wal_senders on the primary " +
					"and restart it (with wal_level = minimal it must be 0: set wal_level = replica too)"}
		}
		if ok {
			return &Error{Kind: Transient, Err: fmt.Errorf("%w; all %d WAL senders of the primary (max_wal_senders) are in use by other standbys or backups: "+
				"pg-standby retries; raise max_wal_senders on the primary if they stay busy", err, n)}
		}
	}
	return err
}

// promoted checks whether the source left recovery during the backup: its
// timeline moved past the backup's start. A source that was a standby and
// cannot be checked, or did not move, stays transient: a cascading source
// that changed state is worth another attempt. nil: not a promotion.
func (b *attempt) promoted(ctx context.Context, err error, main *pgconn.PgConn) error {
	var tli uint32
	check := func(conn *pgconn.PgConn) error {
		sys, err := replconn.IdentifySystem(ctx, conn)
		tli = sys.Timeline
		return err
	}
	cerr := b.onServer(ctx, main, check)
	switch {
	case cerr == nil && tli > b.started.Timeline:
		return &PromotedError{From: b.started.Timeline, To: tli, Err: err}
	case !b.sourceStandby:
		return nil
	case cerr != nil:
		return &Error{Kind: Transient, Err: fmt.Errorf("%w (the source was a standby; its timeline could not be read again: %v)", err, cerr)}
	}
	return &Error{Kind: Transient, Err: fmt.Errorf("%w (the source is a standby, still on timeline %d)", err, tli)}
}

// show reads a setting on main, or on a new connection to the same server.
func (b *attempt) show(ctx context.Context, main *pgconn.PgConn, name string) (string, bool) {
	var v string
	err := b.onServer(ctx, main, func(conn *pgconn.PgConn) error {
		var err error
		v, err = replconn.Show(ctx, conn, name)
		return err
	})
	return v, err == nil
}

// onServer runs fn on main if it is usable, else on a new connection (to the
// same server when main was opened).
func (b *attempt) onServer(ctx context.Context, main *pgconn.PgConn, fn func(*pgconn.PgConn) error) error {
	if main != nil && !main.IsClosed() && !main.IsBusy() {
		if err := fn(main); err == nil {
			return nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cfg := b.connCfg
	if main != nil {
		cfg = replconn.Pin(cfg, main)
	}
	conn, err := replconn.Connect(ctx, cfg, b.log)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return fn(conn)
}

// walSenders is the primary's max_wal_senders: by SHOW when a connection is
// open, else from the error itself. PostgreSQL's "… max_wal_senders
// (currently %d)" keeps the setting's name and the number in every
// translation: the one integer of a message naming max_wal_senders is the
// setting (the English words are not read).
func (b *attempt) walSenders(ctx context.Context, main *pgconn.PgConn, pgErr *pgconn.PgError) (int, bool) {
	if main != nil {
		if v, ok := b.show(ctx, main, "max_wal_senders"); ok {
			n, err := strconv.Atoi(v)
			return n, err == nil
		}
	}
	return walSendersInMessage(pgErr.Message)
}

var integers = regexp.MustCompile(`[0-9]+`)

func walSendersInMessage(msg string) (int, bool) {
	if !strings.Contains(msg, "max_wal_senders") {
		return 0, false // max_connections: "sorry, too many clients already"
	}
	nums := integers.FindAllString(strings.ReplaceAll(msg, "max_wal_senders", ""), -1)
	if len(nums) != 1 {
		return 0, false
	}
	n, err := strconv.Atoi(nums[0])
	return n, err == nil
}
