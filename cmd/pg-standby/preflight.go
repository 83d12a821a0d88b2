package main

import (
	"context"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg-standby/pg-standby/internal/backup"
)

// warnPreflight prints what init --check found that will not stop the
// backup but matters: hot-standby settings run raises, WAL no slot keeps.
func warnPreflight(ctx context.Context, conn *pgconn.PgConn, slot, dataDir string) {
	for _, n := range backup.Preflight(ctx, conn, slot, dataDir) {
		fmt.Fprintln(os.Stderr, "pg-standby init: warning: "+n)
	}
}
