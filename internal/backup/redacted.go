package backup

import (
	"context"

	"github.com/pg-standby/pg-standby/internal/printable"
	"github.com/pg-standby/pg-standby/internal/redact"
)

// Run takes one backup attempt. Every refusal and configuration error comes
// before the first write, so they leave the directory as it was. The error's
// text never holds a password (redact.Text), whatever quoted a conninfo:
// it reaches the journal, STATUS=, D-Bus and basebackup.signal. Nor does
// it hold control characters (printable.Escape): it quotes the primary's
// messages, and systemctl status and terminals show it.
func Run(ctx context.Context, opt Options) (*Result, error) {
	res, err := runAttempt(ctx, opt)
	if err != nil {
		return nil, &redactedError{err: err}
	}
	return res, nil
}

// redactedError shows err's text redacted; errors.Is and As see err.
type redactedError struct{ err error }

func (e *redactedError) Error() string { return printable.Escape(redact.Text(e.err.Error())) }
func (e *redactedError) Unwrap() error { return e.err }
