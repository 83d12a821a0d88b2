package incremental

import (
	"context"
	"errors"
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
	// Covered: summaries on the prior timeline chain without a gap from
	// the prior LSN to the newest one; the rest up to the backup's start
	// is still to be written (the server waits for it).
	Covered bool
	// Oldest is where the oldest summary on that timeline starts (0: none).
	Oldest wal.LSN
	// Gap, when not Covered but Oldest is before the prior LSN, is where
	// the chain of summaries from the prior LSN breaks off.
	Gap wal.LSN
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
	res := conn.ExecParams(ctx, "SELECT start_lsn::text, end_lsn::text FROM pg_available_wal_summaries() WHERE tli = $1 ORDER BY start_lsn LIMIT $2",
		[][]byte{[]byte(strconv.FormatUint(uint64(tli), 10)), []byte(strconv.Itoa(maxSummaries))}, nil, nil, nil).Read()
	if res.Err != nil {
		return Coverage{Why: "pg_available_wal_summaries(): " + res.Err.Error()}
	}
	ranges := make([][2]wal.LSN, 0, len(res.Rows))
	for _, row := range res.Rows {
		s, err1 := wal.ParseLSN(string(row[0]))
		e, err2 := wal.ParseLSN(string(row[1]))
		if err := errors.Join(err1, err2); err != nil || e < s {
			return Coverage{Why: fmt.Sprintf("pg_available_wal_summaries(): bad range %s-%s", row[0], row[1])}
		}
		ranges = append(ranges, [2]wal.LSN{s, e})
	}
	return cover(ranges, lsn)
}

// maxSummaries bounds the rows read: one summary per checkpoint cycle
// (or per wal_summary_keep_time), thousands at most.
const maxSummaries = 100000

// cover says whether ranges (sorted by start) chain without a gap from lsn
// to the newest summarized LSN, as the server demands from the prior start
// to the backup's (PrepareForIncrementalBackup).
func cover(ranges [][2]wal.LSN, lsn wal.LSN) Coverage {
	cov := Coverage{Known: true}
	if len(ranges) == 0 {
		return cov
	}
	cov.Oldest = ranges[0][0]
	cur, newest := lsn, wal.LSN(0)
	for _, r := range ranges {
		newest = max(newest, r[1])
		if r[0] <= cur && r[1] > cur {
			cur = r[1]
		}
	}
	cov.Covered = lsn >= cov.Oldest && cur >= newest
	if !cov.Covered && lsn >= cov.Oldest {
		cov.Gap = cur
	}
	return cov
}
