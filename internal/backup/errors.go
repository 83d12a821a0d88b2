package backup

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
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

var kindNames = map[Kind]string{
	Transient: "transient", Config: "configuration", Refused: "refused", Corrupt: "corrupt primary",
	Protocol: "protocol violation",
}

func (k Kind) String() string { return kindNames[k] }

// Error is a failed attempt with its Kind.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// PromotedError: the source standby of a cascading backup was promoted while
// it sent the backup (the server ends such a backup with SQLSTATE 55000). A
// new attempt copies from it on its new timeline.
type PromotedError struct {
	From, To uint32 // timelines at the backup's start and after
	Err      error
}

func (e *PromotedError) Error() string {
	return fmt.Sprintf("the source standby was promoted during the copy (timeline %d, now %d): "+
		"a retry copies from it on the new timeline (%v)", e.From, e.To, e.Err)
}
func (e *PromotedError) Unwrap() error { return e.Err }

// SettingError: a setting of the primary, read from the primary itself,
// rules the backup out. Fix says what to change.
type SettingError struct {
	Setting, Value, Fix string
	Err                 error
}

func (e *SettingError) Error() string {
	return fmt.Sprintf("%v; the primary has %s = %s: %s", e.Err, e.Setting, e.Value, e.Fix)
}
func (e *SettingError) Unwrap() error { return e.Err }

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

// sqlstateKinds are the SQLSTATEs that have one cause on a replication
// connection. Codes with several causes (55000 object_not_in_prerequisite_state,
// 53300 too_many_connections) are sorted by diagnose, from facts read on the
// primary, into PromotedError or SettingError; undiagnosed they are what this
// table says.
var sqlstateKinds = map[string]Kind{
	"28P01": Config, // invalid_password
	"28000": Config, // invalid_authorization_specification (pg_hba.conf)
	"42501": Config, // insufficient_privilege: no REPLICATION attribute
	"42704": Config, // undefined_object: the slot does not exist
	"42602": Config, // invalid_name: slot name
	"42601": Config, // syntax_error
	"55000": Config, // a prerequisite the primary lacks (wal_level, slots, an invalidated slot)
	"53300": Transient,
}

// classify sorts errors that did not say their kind.
func classify(err error) Kind {
	var refused *instance.RefusedError
	var corrupt *basebackup.ChecksumFailureError
	var pgErr *pgconn.PgError
	var connErr *replconn.ConnectError
	var promoted *PromotedError
	var setting *SettingError
	switch {
	case errors.As(err, &promoted):
		return Transient
	case errors.As(err, &setting):
		return Config
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
		return sqlstateKinds[pgErr.Code] // Transient for codes not listed
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

// sqlstateHints are the next steps for the single-cause SQLSTATEs.
var sqlstateHints = map[string]string{
	"28P01": "check user and password in primary_conninfo (or ~/.pgpass) and the primary's pg_hba.conf, which must allow a \"replication\" connection from this host",
	"42501": "the role in primary_conninfo needs the REPLICATION attribute: ALTER ROLE name REPLICATION on the primary",
	"42704": "create the slot on the primary, or let pg-standby create it (--create-slot), or clear primary_slot_name",
}

func hint(err error, primary string) string {
	var connErr *replconn.ConnectError
	var netErr *net.OpError
	var promoted *PromotedError
	var setting *SettingError
	lost := "the connection to the primary " + primary + " was lost"
	retry := "pg-standby retries, and a rerun keeps what is already written"
	switch {
	case errors.As(err, &promoted), errors.As(err, &setting):
		return "" // they say it themselves
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
	case "28000":
		return sqlstateHints["28P01"]
	case "42704":
		if connErr != nil {
			return "" // an unknown setting at startup, not a slot
		}
	}
	return sqlstateHints[pgErr.Code]
}
