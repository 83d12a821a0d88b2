package testpg

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Pgbench runs pgbench with args (as postgres, -h SocketDir -p Port, database
// postgres) and fails the test on error, e.g. s.Pgbench(t, "-i", "-s", "10", "-q").
func (s *Server) Pgbench(t testing.TB, args ...string) {
	t.Helper()
	full := append([]string{"-h", s.SocketDir, "-p", strconv.Itoa(s.Port), "-U", "postgres"}, args...)
	if _, err := s.v.runPG(context.Background(), "pgbench", full, "PGDATABASE=postgres"); err != nil {
		t.Fatalf("testpg: %v", err)
	}
}

// StartWrites starts a goroutine inserting one row per ~5 ms into table
// writes(id bigserial, at timestamptz) (created if needed) over its own
// connection until stop is called. stop waits for the goroutine, is
// idempotent, and returns how many inserts were acknowledged (an insert whose
// connection broke is not counted, though it may have committed). Failed
// inserts are retried on a new connection and reported with t.Logf. stop is
// also called in t.Cleanup, before the server is stopped.
func (s *Server) StartWrites(t testing.TB) (stop func() int) {
	t.Helper()
	s.SQL(t, "CREATE TABLE IF NOT EXISTS writes (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())")
	quit := make(chan struct{})
	done := make(chan struct{})
	var inserted, failed int
	var firstErr error
	go func() {
		defer close(done)
		var conn *pgconn.PgConn
		defer func() {
			if conn != nil {
				_ = conn.Close(context.Background())
			}
		}()
		fail := func(err error) bool { // reports whether to go on
			failed++
			if firstErr == nil {
				firstErr = err
			}
			if conn != nil {
				_ = conn.Close(context.Background())
				conn = nil
			}
			select {
			case <-quit:
				return false
			case <-time.After(100 * time.Millisecond):
				return true
			}
		}
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if conn == nil {
				c, err := s.connect(ctx)
				if err != nil {
					cancel()
					if !fail(err) {
						return
					}
					continue
				}
				conn = c
			}
			_, err := conn.Exec(ctx, "INSERT INTO writes (at) VALUES (now())").ReadAll()
			cancel()
			if err != nil {
				if !fail(err) {
					return
				}
				continue
			}
			inserted++
		}
	}()
	var once sync.Once
	stop = func() int {
		once.Do(func() {
			close(quit)
			<-done
			if failed > 0 {
				t.Logf("testpg: StartWrites: %d rows inserted, %d attempts failed, first error: %v", inserted, failed, firstErr)
			}
		})
		return inserted
	}
	t.Cleanup(func() { stop() })
	return stop
}
