package replconn

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Settings are a server's answers to SHOW, read by ShowAll.
type Settings struct {
	values map[string]string
	errs   map[string]error
}

// Get is the answer to SHOW name, or its error, as Show returns them.
func (s Settings) Get(name string) (string, error) {
	if v, ok := s.values[name]; ok {
		return v, nil
	}
	if err, ok := s.errs[name]; ok {
		return "", err
	}
	return "", fmt.Errorf("SHOW %s: not asked", name)
}

// ShowAll sends a SHOW for every name before it reads the first answer:
// one round trip for the list. The simple query protocol runs each query
// on its own, so a setting the server refuses fails alone (Get says why);
// only a failing connection is an error. The queries and their answers are
// a few bytes each: names is meant for a bounded list, not for thousands.
func ShowAll(ctx context.Context, conn *pgconn.PgConn, names []string) (Settings, error) {
	s := Settings{values: map[string]string{}, errs: map[string]error{}}
	stop := context.AfterFunc(ctx, func() { conn.Conn().Close() })
	defer stop()
	fe := conn.Frontend()
	for _, name := range names {
		fe.Send(&pgproto3.Query{String: "SHOW " + name})
	}
	if err := fe.Flush(); err != nil {
		return s, CtxErr(ctx, fmt.Errorf("SHOW %s: %w", strings.Join(names, ", "), err))
	}
	for _, name := range names {
		rows, err := ReadResult(conn)
		var pe *pgconn.PgError
		if err != nil && !errors.As(err, &pe) {
			return s, CtxErr(ctx, fmt.Errorf("SHOW %s: %w", name, err))
		}
		switch {
		case err != nil:
			s.errs[name] = fmt.Errorf("SHOW %s: %w", name, err)
		case len(rows) != 1 || len(rows[0]) != 1:
			s.errs[name] = fmt.Errorf("SHOW %s: unexpected result", name)
		default:
			s.values[name] = string(rows[0][0])
		}
	}
	return s, nil
}
