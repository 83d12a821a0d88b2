package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg-standby/pg-standby/internal/basebackup"
	"github.com/pg-standby/pg-standby/internal/instance"
)

// Kind sorts failures by what should happen next.
type Kind int

const (
	// Transient failures (network, primary restart, disk full) may succeed when retried.
	Transient Kind = iota
	// Config is a misconfiguration a retry cannot fix: bad conninfo,
	// authentication, missing REPLICATION, wal_level, missing slot.
	Config
	// Refused: the data directory or a tablespace location must not be written.
	Refused
	// Corrupt: the primary reported data checksum failures.
	Corrupt
)

func (k Kind) String() string {
	return [...]string{"transient", "configuration", "refused", "corrupt primary"}[k]
}

// Error is a failed attempt with its Kind.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// KindOf classifies err.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return classify(err)
}

func configErr(format string, args ...any) error {
	return &Error{Kind: Config, Err: fmt.Errorf(format, args...)}
}

// classify sorts errors that did not say their kind.
func classify(err error) Kind {
	var refused *instance.RefusedError
	var corrupt *basebackup.ChecksumFailureError
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &refused):
		return Refused
	case errors.As(err, &corrupt):
		return Corrupt
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS):
		return Refused
	case errors.As(err, &pgErr):
		switch pgErr.Code {
		case "28P01", "28000": // invalid_password, invalid_authorization_specification
			return Config
		case "42501": // insufficient_privilege: no REPLICATION attribute
			return Config
		case "55000", "42704", "42602", "42601": // wal_level, undefined slot, bad names, syntax
			return Config
		case "53300": // too_many_connections: max_wal_senders
			// The backup needs two senders (data and WAL): fewer configured is
			// permanent; all of them busy with other standbys may pass.
			if strings.Contains(pgErr.Message, "(currently 0)") || strings.Contains(pgErr.Message, "(currently 1)") {
				return Config
			}
		}
	}
	return Transient
}

// explain adds the admin's next step to errors whose cause PostgreSQL names tersely.
func explain(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	hint := ""
	switch pgErr.Code {
	case "28P01", "28000":
		hint = "check user and password in primary_conninfo (or ~/.pgpass) and the primary's pg_hba.conf, which must allow a \"replication\" connection from this host"
	case "42501":
		hint = "the role in primary_conninfo needs the REPLICATION attribute: ALTER ROLE name REPLICATION on the primary"
	case "55000":
		hint = "set wal_level = replica (or logical) on the primary and restart it"
	case "53300":
		hint = "raise max_wal_senders on the primary (the backup needs 2 connections: data and WAL) and restart it; with wal_level = minimal it must be 0, so set wal_level = replica too"
	case "42704":
		hint = "create the slot on the primary, or let pg-standby create it (--create-slot), or clear primary_slot_name"
	}
	if hint == "" {
		return err
	}
	return fmt.Errorf("%w; %s", err, hint)
}
