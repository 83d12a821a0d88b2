package replconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/jackc/pgx/v5/pgconn"
)

// Reason is why a connection failed, in one line and without repetition,
// built from the error's structure: pgconn joins one error per address and
// TLS attempt. What the server said (FATAL and SQLSTATE) wins over network
// errors, a network error is its system error ("connection refused"), and
// the same cause for several attempts is said once.
func Reason(err error) string {
	var seen []string
	add := func(s string) {
		for _, x := range seen {
			if x == s {
				return
			}
		}
		seen = append(seen, s)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return fmt.Sprintf("%s: %s (SQLSTATE %s)", pe.Severity, pe.Message, pe.Code)
	}
	for _, e := range attempts(err) {
		add(leaf(e))
	}
	if len(seen) == 0 {
		return err.Error()
	}
	s := seen[len(seen)-1]
	for i := len(seen) - 2; i >= 0; i-- {
		s = seen[i] + "; " + s
	}
	return s
}

// attempts are the per-address errors of a pgconn.ConnectError (or err).
func attempts(err error) []error {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		err = ce.Unwrap()
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// leaf is one attempt's cause: the system error of a network failure, a
// timeout said as such, else the innermost error.
func leaf(err error) string {
	var se *os.SyscallError
	var op *net.OpError
	var dns *net.DNSError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return "timed out"
	case errors.As(err, &dns):
		return "cannot resolve " + dns.Name + ": " + dns.Err
	case errors.As(err, &se):
		return se.Err.Error()
	case errors.As(err, &op):
		return op.Err.Error()
	}
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}
