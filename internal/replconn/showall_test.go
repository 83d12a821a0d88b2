package replconn_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg-standby/pg-standby/internal/replconn"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// TestShowAll: the pipelined SHOWs answer what one Show each answers, a
// setting the server does not know fails alone with its SQLSTATE, and a
// closed connection is an error of the call.
func TestShowAll(t *testing.T) {
	testpg.Require(t)
	p := testpg.Start(t, testpg.Options{})
	conn, err := connect(t, fmt.Sprintf("host=127.0.0.1 port=%d user=replicator password=%s", p.Port, p.Password))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	names := []string{"wal_segment_size", "no_such_setting", "max_connections", "timezone", "data_directory_mode"}
	set, err := replconn.ShowAll(ctx, conn, names)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		got, gerr := set.Get(n)
		want, werr := replconn.Show(ctx, conn, n)
		if got != want || (gerr == nil) != (werr == nil) {
			t.Errorf("%s: ShowAll %q, %v; Show %q, %v", n, got, gerr, want, werr)
		}
	}
	var pe *pgconn.PgError
	if _, err := set.Get("no_such_setting"); !errors.As(err, &pe) || pe.Code != "42704" {
		t.Errorf("unknown setting: %v, want SQLSTATE 42704 (undefined_object)", err)
	}
	if _, err := set.Get("work_mem"); err == nil {
		t.Error("a setting not asked for has an answer")
	}
	conn.Close(ctx)
	if _, err := replconn.ShowAll(ctx, conn, names); err == nil {
		t.Error("ShowAll on a closed connection: no error")
	}
}
