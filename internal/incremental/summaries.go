package incremental

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg-standby/pg-standby/internal/wal"
)

// Coverage is what the primary's WAL summaries say about a prior start.
type Coverage struct {
	// Known is false when the summaries could not be read (no database
	// connection with this conninfo, or pg_available_wal_summaries() not
	// granted: it is superuser-only by default); Why says why. Then the
	// server's own check at BASE_BACKUP (INCREMENTAL) decides: SQLSTATE
	// 55000, which Classify turns into a fallback to a full copy.
	Known bool
	Why   string
	// Covered: the oldest summary on the prior timeline starts at or
	// before the prior LSN. Summaries are contiguous and removed oldest
	// first, so the rest of the range is there or still to be written.
	Covered bool
	// Oldest is where the oldest summary on that timeline starts (0: none).
	Oldest wal.LSN
}

// CheckSummaries reads pg_available_wal_summaries() over a normal (not
// replication) connection made from the replication conninfo cfg, and says
// whether the summaries on tli reach back to lsn. A connection or query
// that fails gives Known false, not an error: it is advice, not a verdict.
func CheckSummaries(ctx context.Context, cfg *pgconn.Config, tli uint32, lsn wal.LSN) Coverage {
	c := cfg.Copy()
	delete(c.RuntimeParams, "replication")
	c.OnNotice = nil
	conn, err := pgconn.ConnectConfig(ctx, c)
	if err != nil {
		return Coverage{Why: "no database connection with primary_conninfo: " + err.Error()}
	}
	defer conn.Close(context.Background())
	res := conn.ExecParams(ctx, "SELECT start_lsn::text FROM pg_available_wal_summaries() WHERE tli = $1 ORDER BY start_lsn LIMIT 1",
		[][]byte{[]byte(strconv.FormatUint(uint64(tli), 10))}, nil, nil, nil).Read()
	if res.Err != nil {
		return Coverage{Why: "pg_available_wal_summaries(): " + res.Err.Error()}
	}
	cov := Coverage{Known: true}
	if len(res.Rows) == 0 {
		return cov
	}
	oldest, err := wal.ParseLSN(string(res.Rows[0][0]))
	if err != nil {
		return Coverage{Why: fmt.Sprintf("pg_available_wal_summaries(): %v", err)}
	}
	cov.Oldest, cov.Covered = oldest, oldest <= lsn
	return cov
}
