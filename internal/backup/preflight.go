package backup

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg-standby/pg-standby/internal/pgconf"
	"github.com/pg-standby/pg-standby/internal/replconn"
)

// walKeepEnough is the wal_keep_size below which a standby without a slot
// (or WAL archive) is warned that it can fall behind for good.
const walKeepEnough = 1 << 30

// Preflight is what init --check reports about a primary before the
// instance in dataDir exists: the hot-standby settings run will raise
// (against PostgreSQL's defaults) and the risk of losing WAL without a slot.
func Preflight(ctx context.Context, conn *pgconn.PgConn, slot, dataDir string) []string {
	set, err := replconn.ShowAll(ctx, conn, append(hotStandbyNames(), walKeepSettings...))
	if err != nil {
		return nil
	}
	notes := hotStandbyNotes(nil, readHotStandby(set), dataDir)
	if w := walKeepWarning(set, slot, nil); w != "" {
		notes = append(notes, w)
	}
	return notes
}

// walKeepSettings are the settings walKeepWarning reads.
var walKeepSettings = []string{"wal_keep_size", "max_wal_size"}

// walKeepWarning warns when nothing keeps WAL for this standby once the
// copy is done: no slot, no restore_command, and a wal_keep_size under
// walKeepEnough. The primary then removes WAL as its checkpoints go, and a
// standby that was stopped or slow for longer can only be re-seeded.
func walKeepWarning(set replconn.Settings, slot string, conf *pgconf.Config) string {
	if slot != "" {
		return ""
	}
	if conf != nil {
		if s, ok := conf.Get("restore_command"); ok && strings.TrimSpace(s.Value) != "" {
			return ""
		}
	}
	keepText, err := set.Get("wal_keep_size")
	if err != nil {
		return ""
	}
	keep, err := parseMB(keepText)
	if err != nil || keep >= walKeepEnough {
		return ""
	}
	maxWAL, _ := set.Get("max_wal_size")
	return fmt.Sprintf("no replication slot (primary_slot_name is not set) and the primary keeps only wal_keep_size = %s of WAL for standbys: "+
		"a standby that is stopped or falls behind by more WAL than that (or the primary's max_wal_size = %s) finds it removed "+
		"(\"requested WAL segment … has already been removed\") and can only be re-seeded; use a slot "+
		"(pg-standby init INSTANCE --slot NAME --create-slot, or primary_slot_name and --create-slot) or raise wal_keep_size on the primary",
		keepText, maxWAL)
}

// parseMB reads a size setting whose unit is MB ("0", "512MB", "1GB").
func parseMB(s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n << 20, nil
	}
	return parseSize(s)
}
