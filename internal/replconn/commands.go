package replconn

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg-standby/pg-standby/internal/wal"
)

// System is IDENTIFY_SYSTEM's answer.
type System struct {
	SystemID string
	Timeline uint32
	XLogPos  wal.LSN
}

// IdentifySystem asks the primary who it is and where its WAL is.
func IdentifySystem(ctx context.Context, conn *pgconn.PgConn) (System, error) {
	rows, err := Exec(ctx, conn, "IDENTIFY_SYSTEM")
	if err != nil {
		return System{}, fmt.Errorf("IDENTIFY_SYSTEM: %w", err)
	}
	if len(rows) != 1 || len(rows[0]) < 3 {
		return System{}, fmt.Errorf("IDENTIFY_SYSTEM: unexpected result")
	}
	tli, err := strconv.ParseUint(string(rows[0][1]), 10, 32)
	if err != nil {
		return System{}, fmt.Errorf("IDENTIFY_SYSTEM: bad timeline %q", rows[0][1])
	}
	pos, err := wal.ParseLSN(string(rows[0][2]))
	if err != nil {
		return System{}, fmt.Errorf("IDENTIFY_SYSTEM: %w", err)
	}
	return System{SystemID: string(rows[0][0]), Timeline: uint32(tli), XLogPos: pos}, nil
}

// Show returns a server setting (SHOW works on replication connections):
// ShowAll of one.
func Show(ctx context.Context, conn *pgconn.PgConn, name string) (string, error) {
	s, err := ShowAll(ctx, conn, []string{name})
	if err != nil {
		return "", err
	}
	return s.Get(name)
}

// CreateSlot creates a physical slot that reserves WAL at once; a temporary
// one disappears with the connection.
func CreateSlot(ctx context.Context, conn *pgconn.PgConn, name string, temporary bool) error {
	cmd := "CREATE_REPLICATION_SLOT " + QuoteIdent(name)
	if temporary {
		cmd += " TEMPORARY"
	}
	cmd += " PHYSICAL (RESERVE_WAL)"
	if _, err := Exec(ctx, conn, cmd); err != nil {
		return fmt.Errorf("create replication slot %q: %w", name, err)
	}
	return nil
}

// SlotExists reports whether a physical slot exists (READ_REPLICATION_SLOT, PostgreSQL 15+).
func SlotExists(ctx context.Context, conn *pgconn.PgConn, name string) (bool, error) {
	rows, err := Exec(ctx, conn, "READ_REPLICATION_SLOT "+QuoteIdent(name))
	if err != nil {
		return false, fmt.Errorf("read replication slot %q: %w", name, err)
	}
	return len(rows) == 1 && len(rows[0]) > 0 && rows[0][0] != nil, nil
}

// QuoteIdent quotes an identifier for a replication command.
func QuoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
