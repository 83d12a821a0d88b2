package incremental

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg-standby/pg-standby/internal/replconn"
	"github.com/pg-standby/pg-standby/internal/wal"
)

// History is a server's timeline history: for each ancestor timeline,
// where the next one branched off it (src/backend/access/transam/timeline.c).
type History struct {
	// Current is the server's timeline; End holds no entry for it.
	Current uint32
	// End maps each ancestor timeline to its switch point: the LSN where
	// WAL of the child timeline begins. WAL of that timeline past it is
	// not the server's.
	End map[uint32]wal.LSN
}

// maxHistory bounds a history file (a line per ancestor timeline).
const maxHistory = 1 << 20

// ParseHistory reads a NNNNNNNN.history file for timeline current: lines of
// "parentTLI<tab>switchpoint<tab>reason", comments and blank lines skipped
// (as readTimeLineHistory). Parents must ascend and stay below current.
func ParseHistory(current uint32, content []byte) (*History, error) {
	if len(content) > maxHistory {
		return nil, fmt.Errorf("timeline %d history: %d bytes, more than %d", current, len(content), maxHistory)
	}
	h := &History{Current: current, End: map[uint32]wal.LSN{}}
	var last uint32
	sc := bufio.NewScanner(bytes.NewReader(content))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("timeline %d history line %d: want a timeline and a switch point", current, n)
		}
		tli, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil || tli == 0 || uint32(tli) <= last || uint32(tli) >= current {
			return nil, fmt.Errorf("timeline %d history line %d: bad timeline %q", current, n, f[0])
		}
		lsn, err := wal.ParseLSN(f[1])
		if err != nil {
			return nil, fmt.Errorf("timeline %d history line %d: %w", current, n, err)
		}
		last = uint32(tli)
		h.End[last] = lsn
	}
	return h, sc.Err()
}

// ReadHistory asks the server for its history over a replication
// connection: TIMELINE_HISTORY of its current timeline (from
// IDENTIFY_SYSTEM); timeline 1 has no history file and no ancestors.
func ReadHistory(ctx context.Context, conn *pgconn.PgConn, current uint32) (*History, error) {
	if current <= 1 {
		return &History{Current: current, End: map[uint32]wal.LSN{}}, nil
	}
	rows, err := replconn.Exec(ctx, conn, fmt.Sprintf("TIMELINE_HISTORY %d", current))
	if err != nil {
		return nil, fmt.Errorf("TIMELINE_HISTORY %d: %w", current, err)
	}
	if len(rows) != 1 || len(rows[0]) != 2 {
		return nil, fmt.Errorf("TIMELINE_HISTORY %d: unexpected result", current)
	}
	return ParseHistory(current, rows[0][1])
}

// ErrDiverged says the prior state holds WAL the server's history does not:
// the directory was written on a timeline the server never had (a former
// primary that went on after a failover), or past where the server's history
// left that timeline. pg_rewind is the tool for that.
var ErrDiverged = errors.New("diverged from the primary's timeline history")

// DivergedError is an ErrDiverged with what was found.
type DivergedError struct {
	TLI uint32
	LSN wal.LSN
	// Switch is where the server left TLI, when TLI is in its history.
	Switch    wal.LSN
	InHistory bool
	Current   uint32
	Pos       wal.LSN
}

func (e *DivergedError) Error() string {
	switch {
	case !e.InHistory:
		return fmt.Sprintf("its timeline %d is not in the primary's history (the primary is on timeline %d)", e.TLI, e.Current)
	case e.TLI == e.Current:
		return fmt.Sprintf("it reached %s on timeline %d, past the primary's current WAL position %s", e.LSN, e.TLI, e.Pos)
	}
	return fmt.Sprintf("it reached %s on timeline %d, past %s where the primary's history switched from timeline %d to the next", e.LSN, e.TLI, e.Switch, e.TLI)
}

func (e *DivergedError) Is(target error) bool { return target == ErrDiverged }

// Contains checks that WAL up to lsn on timeline tli is WAL of the server:
// tli is the server's current timeline and lsn not past pos (its current
// position), or tli is an ancestor and lsn is not past its switch point. A
// *DivergedError otherwise.
func (h *History) Contains(tli uint32, lsn, pos wal.LSN) error {
	e := &DivergedError{TLI: tli, LSN: lsn, Current: h.Current, Pos: pos}
	if tli == h.Current {
		e.InHistory = true
		if lsn > pos {
			return e
		}
		return nil
	}
	end, ok := h.End[tli]
	if !ok {
		return e
	}
	e.InHistory, e.Switch = true, end
	if lsn > end {
		return e
	}
	return nil
}
