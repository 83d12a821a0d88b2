package backup

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pg-standby/pg-standby/internal/basebackup"
	"github.com/pg-standby/pg-standby/internal/extract"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/manifest"
	"github.com/pg-standby/pg-standby/internal/replconn"
	"github.com/pg-standby/pg-standby/internal/tarstream"
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
	// Protocol: the stream broke the archive or protocol rules (a forbidden
	// member, link or archive name, an oversized or malformed manifest,
	// messages out of order): a broken or hostile server, not a cut stream.
	Protocol
)

func (k Kind) String() string {
	return [...]string{"transient", "configuration", "refused", "corrupt primary", "protocol violation"}[k]
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
	var connErr *replconn.ConnectError
	switch {
	case errors.As(err, &connErr) && unresolvable(connErr):
		return Config
	case errors.As(err, &refused):
		return Refused
	case errors.As(err, &corrupt):
		return Corrupt
	case breaksProtocol(err):
		return Protocol
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

// breaksProtocol reports whether err is the primary breaking the stream's
// rules, as the stages below type it.
func breaksProtocol(err error) bool {
	var (
		msg     *basebackup.ProtocolError
		order   *basebackup.StreamError
		tar     *tarstream.FormatError
		member  *extract.ForbiddenError
		man     *manifest.FormatError
		tooLong *pgproto3.ExceededMaxBodyLenErr
	)
	return errors.As(err, &msg) || errors.As(err, &order) || errors.As(err, &tar) ||
		errors.As(err, &member) || errors.As(err, &man) || errors.As(err, &tooLong)
}

// unresolvable reports whether err failed on name lookups that all said
// the name does not exist (NXDOMAIN): a typo in primary_conninfo, which a
// retry cannot fix. A lookup that timed out or found no DNS server (at boot,
// say) is not that.
func unresolvable(err error) bool {
	found, notFound := false, true
	var walk func(error)
	walk = func(e error) {
		if d, ok := e.(*net.DNSError); ok {
			found, notFound = true, notFound && d.IsNotFound
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			if x := u.Unwrap(); x != nil {
				walk(x)
			}
		}
	}
	walk(err)
	return found && notFound
}

// explain adds the admin's next step to errors whose cause is stated
// tersely; primary is the primary's host:port.
func explain(err error, primary string) error {
	if hint := hint(err, primary); hint != "" {
		return fmt.Errorf("%w; %s", err, hint)
	}
	return err
}

func hint(err error, primary string) string {
	var connErr *replconn.ConnectError
	var netErr *net.OpError
	lost := "the connection to the primary " + primary + " was lost"
	retry := "pg-standby retries, and a rerun keeps what is already written"
	switch {
	case errors.As(err, &connErr) && unresolvable(connErr):
		return "check the host name in primary_conninfo: DNS says it does not exist"
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return "free space on that file system (the copy needs about the size of the primary's data directory and tablespaces) " +
			"and run again: nothing needs wiping, the rerun keeps what is already written"
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		if connErr == nil && (errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &netErr)) {
			return lost + " (network, or the primary stopped); " + retry
		}
		return ""
	}
	switch pgErr.Code {
	case "57P01", "57P02", "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
		return "the primary " + primary + " shut down or restarted; " + retry
	case "28P01", "28000":
		return "check user and password in primary_conninfo (or ~/.pgpass) and the primary's pg_hba.conf, which must allow a \"replication\" connection from this host"
	case "42501":
		return "the role in primary_conninfo needs the REPLICATION attribute: ALTER ROLE name REPLICATION on the primary"
	case "55000":
		return "set wal_level = replica (or logical) on the primary and restart it"
	case "53300":
		return "raise max_wal_senders on the primary (the backup needs 2 connections: data and WAL) and restart it; with wal_level = minimal it must be 0, so set wal_level = replica too"
	case "42704":
		return "create the slot on the primary, or let pg-standby create it (--create-slot), or clear primary_slot_name"
	}
	return ""
}
