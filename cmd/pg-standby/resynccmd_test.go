package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/pg-standby/pg-standby/internal/incremental"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/wal"
)

// TestCheckHistory: which prior states the primary's history holds.
func TestCheckHistory(t *testing.T) {
	// The primary is on timeline 2, branched from 1 at 0/5000000.
	h := &incremental.History{Current: 2, End: map[uint32]wal.LSN{1: 0x5000000}}
	pos := wal.LSN(0x9000000)
	for _, c := range []struct {
		name string
		ctl  instance.Control
		want string // "" accepted, else in the refusal
	}{
		{"standby on the current timeline", instance.Control{State: instance.DBShutdownedInRecovery, TLI: 2, Checkpoint: 0x8000000, MinRecovery: 0x8000100, MinRecoveryTLI: 2}, ""},
		{"killed standby", instance.Control{State: instance.DBInArchiveRecovery, TLI: 2, Checkpoint: 0x8000000, MinRecovery: 0x8000100, MinRecoveryTLI: 2}, ""},
		{"standby stopped before the failover", instance.Control{State: instance.DBShutdownedInRecovery, TLI: 1, Checkpoint: 0x4000000, MinRecovery: 0x4FFFFFF, MinRecoveryTLI: 1}, ""},
		{"old primary, clean switchover", instance.Control{State: instance.DBShutdowned, TLI: 1, Checkpoint: 0x4FFFF00}, ""},
		{"old primary, its checkpoint at the switch point", instance.Control{State: instance.DBShutdowned, TLI: 1, Checkpoint: 0x5000000}, "pg_rewind"},
		{"old primary, went on writing", instance.Control{State: instance.DBShutdowned, TLI: 1, Checkpoint: 0x6000000}, "switched from timeline 1"},
		{"standby that replayed past the switch", instance.Control{State: instance.DBShutdownedInRecovery, TLI: 1, Checkpoint: 0x4000000, MinRecovery: 0x5000100, MinRecoveryTLI: 1}, "pg_rewind"},
		{"a sibling timeline", instance.Control{State: instance.DBShutdowned, TLI: 3, Checkpoint: 0x6000000}, "not in the primary's history"},
		{"ahead of the primary", instance.Control{State: instance.DBShutdownedInRecovery, TLI: 2, Checkpoint: 0x8000000, MinRecovery: pos + 1, MinRecoveryTLI: 2}, "past the primary's current WAL position"},
		{"crashed primary", instance.Control{State: instance.DBInProduction, TLI: 2, Checkpoint: 0x8000000}, "did not shut down cleanly"},
	} {
		err := checkHistory(h, &c.ctl, pos, "/srv/pg/x")
		var r *refusal
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v, want accepted", c.name, err)
		case c.want != "" && (!errors.As(err, &r) || r.code != exitRefused || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want a refusal (exit %d) saying %q", c.name, err, exitRefused, c.want)
		}
	}
}
