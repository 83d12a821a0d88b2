package testpg

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// sqlTimeout bounds one SQL/SQLErr call.
const sqlTimeout = 5 * time.Minute

// connect opens a superuser connection over the server's unix socket.
func (s *Server) connect(ctx context.Context) (*pgconn.PgConn, error) {
	conninfo := fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres connect_timeout=10 sslmode=disable",
		quoteConninfo(s.SocketDir), s.Port)
	cfg, err := pgconn.ParseConfig(conninfo)
	if err != nil {
		return nil, fmt.Errorf("parse conninfo: %w", err)
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s port %d: %w", s.SocketDir, s.Port, err)
	}
	return conn, nil
}

// SQL runs one or more statements as superuser postgres over the unix socket
// (simple protocol) and returns the last statement's rows as psql -At prints
// them: columns joined by "|", rows by "\n", NULL as "". It fails the test on
// error, so call it from the test's goroutine only.
func (s *Server) SQL(t testing.TB, sql string) string {
	t.Helper()
	out, err := s.SQLErr(sql)
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	return out
}

// SQLErr is SQL returning the error instead of failing.
func (s *Server) SQLErr(sql string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), sqlTimeout)
	defer cancel()
	conn, err := s.connect(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	results, err := conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		return "", fmt.Errorf("sql %q: %w", abbreviate(sql), err)
	}
	if len(results) == 0 {
		return "", nil
	}
	return formatRows(results[len(results)-1].Rows), nil
}

func formatRows(rows [][][]byte) string {
	lines := make([]string, len(rows))
	for i, row := range rows {
		cols := make([]string, len(row))
		for j, v := range row {
			cols[j] = string(v) // NULL (nil) prints as ""
		}
		lines[i] = strings.Join(cols, "|")
	}
	return strings.Join(lines, "\n")
}

func abbreviate(sql string) string {
	sql = strings.Join(strings.Fields(sql), " ")
	if len(sql) > 200 {
		return sql[:200] + "..."
	}
	return sql
}

// quoteConninfo quotes a libpq conninfo value.
func quoteConninfo(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// WaitFor polls SQL(query) until it returns want or timeout passes; it fails
// the test with the last result (or error).
func (s *Server) WaitFor(t testing.TB, query, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, err := s.SQLErr(query)
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("testpg: after %v, %q still does not return %q: last error: %v", timeout, query, want, err)
			}
			t.Fatalf("testpg: after %v, %q returns %q, want %q", timeout, query, got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// CreateTablespace creates a directory via TempDir and CREATE TABLESPACE name
// LOCATION it; it returns the location. The directory is removed only after
// the server has stopped.
func (s *Server) CreateTablespace(t testing.TB, name string) string {
	t.Helper()
	loc, err := makeDir(s.t.Name() + "_ts")
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	register(s.t, loc)
	s.SQL(t, fmt.Sprintf("CREATE TABLESPACE %s LOCATION %s", name, quoteLiteral(loc)))
	return loc
}
