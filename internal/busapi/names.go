package busapi

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/godbus/dbus/v5"

	"github.com/pg-standby/pg-standby/internal/progress"
)

// The names on the bus; see the package comment and README.md.
const (
	// NamePrefix is the common prefix of every worker's bus name (the
	// policy's own_prefix).
	NamePrefix = "org.pgstandby.Standby1"
	// Interface is the job interface of a worker's object.
	Interface = "org.pgstandby.Standby1.Job"
	// PathPrefix is the parent of every worker's object path.
	PathPrefix = "/org/pgstandby/Standby1/job"
	// ErrNotCancelable is the error name of Cancel on a finished job.
	ErrNotCancelable = "org.pgstandby.Standby1.Error.NotCancelable"
	// ErrAccessDenied is the standard error for a caller that may not cancel.
	ErrAccessDenied = "org.freedesktop.DBus.Error.AccessDenied"
)

// maxName is the D-Bus limit on a bus name's length.
const maxName = 255

// Label escapes s into one element of a bus name or object path, as
// systemd's bus_label_escape does: ASCII letters, and digits except first,
// stay; every other byte becomes _ and two lower-case hex digits; "" is "_".
// A label that would make a bus name longer than D-Bus allows is replaced
// by "h" and a SHA-256 prefix of s.
func Label(s string) string {
	if s == "" {
		return "_"
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9') {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('_')
		b.WriteString(hex.EncodeToString([]byte{c}))
	}
	if len(NamePrefix)+1+b.Len() > maxName {
		sum := sha256.Sum256([]byte(s))
		return "h" + hex.EncodeToString(sum[:16])
	}
	return b.String()
}

// Name is the bus name of the worker of the instance in dataDir.
func Name(dataDir string) string { return NamePrefix + "." + Label(dataDir) }

// Path is the object path of the worker of the instance in dataDir.
func Path(dataDir string) dbus.ObjectPath { return dbus.ObjectPath(PathPrefix + "/" + Label(dataDir)) }

// Phases are the stable values of the Phase property (and of status --json),
// for the progress phases and the ends of a run.
const (
	PhaseInspecting = "inspecting"
	PhaseConnecting = "connecting"
	PhaseCheckpoint = "checkpoint"
	PhaseCopying    = "copying"
	PhaseWAL        = "streaming-wal"
	PhaseVerifying  = "verifying"
	PhaseSyncing    = "syncing"
	PhaseHandover   = "handover"
	PhaseDone       = "done"
	PhaseCopyDone   = "copy-complete" // a copy-only run (patroni-replica) ended: a bare copy, no standby
	PhaseRetry      = "waiting-retry" // back-off after a failed attempt; LastError says why
	PhaseFailed     = "failed"
	PhaseCancelled  = "cancelled"
)

var phaseIDs = map[progress.Phase]string{
	progress.Inspecting:   PhaseInspecting,
	progress.Connecting:   PhaseConnecting,
	progress.Checkpoint:   PhaseCheckpoint,
	progress.Copying:      PhaseCopying,
	progress.WaitingWAL:   PhaseWAL,
	progress.Verifying:    PhaseVerifying,
	progress.Syncing:      PhaseSyncing,
	progress.Handover:     PhaseHandover,
	progress.Done:         PhaseDone,
	progress.CopyDone:     PhaseCopyDone,
	progress.WaitingRetry: PhaseRetry,
}

// PhaseID is the stable name of p: one of the Phase constants, or p's text
// with spaces as dashes for a phase this table does not know yet.
func PhaseID(p progress.Phase) string {
	if id, ok := phaseIDs[p]; ok {
		return id
	}
	return strings.ReplaceAll(string(p), " ", "-")
}
