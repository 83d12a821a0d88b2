package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pg-standby/pg-standby/internal/busapi"
	"github.com/pg-standby/pg-standby/internal/health"
	"github.com/pg-standby/pg-standby/internal/progress"
)

// DefaultEvery is the least time between two writes that change only
// counters; a change of phase or attempt is written at once.
const DefaultEvery = 5 * time.Second

// Config configures a Writer.
type Config struct {
	Dir      string // the textfile directory
	File     string // the file's base name without ".prom" (see FileName)
	Instance string // the instance label's value
	Log      *slog.Logger
	Every    time.Duration // 0: DefaultEvery
}

// Writer is the metrics file of one instance. It implements progress.Sink.
type Writer struct {
	cfg Config

	mu        sync.Mutex
	s         state
	lastWrite time.Time
	warned    bool
	err       error // of the last write
}

// state is what the file says.
type state struct {
	phase       string // a busapi.Phase* value
	attempt     int64
	copied      int64
	reused      int64 // kept from earlier attempts' or a resynced standby's files, not received
	estimated   int64
	rate        float64
	start       time.Time // of the current attempt
	lastSuccess time.Time
	lastFailure time.Time
	class       string // the last failure's class ("" unknown)
	health      *Health
	observed    bool // a backup ran: its progress gauges mean something
}

// Health is a finished standby's health as `status` sees it.
type Health struct {
	State  string // status' state: standby, not-streaming, not-running, ...
	Report health.Report
}

// New returns a Writer; lastFailure (zero if none) is the failure the
// instance recorded before this run, of unknown class.
func New(cfg Config, lastFailure time.Time) *Writer {
	if cfg.Every == 0 {
		cfg.Every = DefaultEvery
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Writer{cfg: cfg, s: state{phase: busapi.PhaseInspecting, lastFailure: lastFailure}}
}

// FileName is the metrics file's base name for an instance name (a Debian
// cluster's 15-main, or a data directory): pg-standby- and the bus label.
func FileName(instance string) string { return "pg-standby-" + busapi.Label(instance) }

// Report implements progress.Sink: at most one write per Every, except at
// a change of phase or attempt. A back-off (WaitingRetry) is a failure of
// a transient kind, the only kind the worker retries.
func (w *Writer) Report(s progress.Snapshot) {
	w.mu.Lock()
	defer w.mu.Unlock()
	phase := busapi.PhaseID(s.Phase)
	w.s.observed = true
	changed := phase != w.s.phase || s.Attempt != w.s.attempt
	w.s.phase, w.s.attempt = phase, s.Attempt
	if s.Phase == progress.WaitingRetry {
		if changed {
			w.s.lastFailure, w.s.class = s.At, "transient"
		}
	} else {
		w.s.copied, w.s.reused, w.s.estimated, w.s.start = s.Streamed, s.Reused, s.Total, s.At.Add(-s.Elapsed)
		w.s.rate = 0
		if secs := s.Elapsed.Seconds(); secs > 1 {
			w.s.rate = float64(s.Streamed) / secs
		}
	}
	if changed || time.Since(w.lastWrite) >= w.cfg.Every {
		w.write()
	}
}

// Completed writes the end of the run: success, or a failure of class
// (backup.Kind's name; "stopped" is no failure and changes nothing but
// the phase).
func (w *Writer) Completed(success bool, class string, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case success:
		w.s.phase, w.s.lastSuccess = busapi.PhaseDone, at
	case class == "stopped":
		w.s.phase = busapi.PhaseCancelled
	default:
		w.s.phase, w.s.lastFailure, w.s.class = busapi.PhaseFailed, at, class
	}
	w.write()
}

// Standby writes a finished standby: phase done since finished (zero if
// unknown), and its health.
func (w *Writer) Standby(finished time.Time, h Health) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.s.phase, w.s.lastSuccess, w.s.health = busapi.PhaseDone, finished, &h
	w.write()
}

// write replaces the file; a failure is logged once, never returned: the
// backup goes on without metrics.
func (w *Writer) write() {
	w.lastWrite = time.Now()
	err := replace(w.cfg.Dir, w.cfg.File+".prom", w.s.render(w.cfg.Instance, w.lastWrite))
	w.err = err
	if err != nil && !w.warned {
		w.warned = true
		w.cfg.Log.Warn("cannot write the metrics file (the backup goes on; see docs/metrics.md)", "error", err)
	}
}

// Err is why the last write failed, nil when it succeeded (or none was made).
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// replace writes name in dir as name.PID, then renames it into place.
// The temporary file is created exclusively and never through a link;
// the rename replaces whatever has the name (a planted symlink too)
// without following it.
func replace(dir, name string, data []byte) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open metrics directory: %w", err)
	}
	defer root.Close()
	tmp := name + "." + strconv.Itoa(os.Getpid())
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) { // left by a killed worker of the same pid
		if err = root.Remove(tmp); err == nil {
			f, err = root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		}
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	// Readable by node_exporter's user whatever the umask (the unit's is 0077).
	_, err = f.Write(data)
	err = errors.Join(err, f.Chmod(0o644), f.Close())
	if err == nil {
		err = root.Rename(tmp, name)
	}
	if err != nil {
		root.Remove(tmp)
		return fmt.Errorf("write %s in %s: %w", name, dir, err)
	}
	return nil
}

// phases are the states of pgstandby_backup_phase, one series each.
var phases = []string{busapi.PhaseInspecting, busapi.PhaseConnecting, busapi.PhaseCheckpoint, busapi.PhaseCopying,
	busapi.PhaseWAL, busapi.PhaseVerifying, busapi.PhaseSyncing, busapi.PhaseHandover, busapi.PhaseDone,
	busapi.PhaseRetry, busapi.PhaseFailed, busapi.PhaseCancelled}

// render is the file's text (exposition format 0.0.4, no timestamps on
// samples), written at the time at: its own gauge, so that a file nobody
// rewrites any more shows its age in Prometheus.
func (s state) render(instance string, at time.Time) []byte {
	var b bytes.Buffer
	inst := `pg_instance="` + labelValue(instance) + `"`
	metric := func(name, typ, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	sample := func(name, labels string, v float64) {
		fmt.Fprintf(&b, "%s{%s} %s\n", name, labels, strconv.FormatFloat(v, 'f', -1, 64))
	}
	one := func(name, typ, help string, v float64) {
		metric(name, typ, help)
		sample(name, inst, v)
	}
	one("pgstandby_metrics_last_update_timestamp_seconds", "gauge", "When this file was written: every other gauge is as of then.", epoch(at))
	metric("pgstandby_backup_phase", "gauge", "Phase of the instance's backup: 1 for the current one.")
	known := false
	for _, p := range phases {
		sample("pgstandby_backup_phase", inst+`,phase="`+p+`"`, b2f(p == s.phase))
		known = known || p == s.phase
	}
	if !known {
		sample("pgstandby_backup_phase", inst+`,phase="`+labelValue(s.phase)+`"`, 1)
	}
	if s.observed {
		one("pgstandby_backup_attempts_total", "counter", "Backup attempts made for the pending backup, the current one included.", float64(s.attempt))
		one("pgstandby_backup_copied_bytes", "gauge", "Bytes of the archive received by the current attempt.", float64(s.copied))
		one("pgstandby_backup_reused_bytes", "gauge", "Bytes the current attempt kept from files already on disk instead of receiving them (resume and resync by changed blocks).", float64(s.reused))
		one("pgstandby_backup_estimated_bytes", "gauge", "The primary's estimate of the archive's size (0 while unknown).", float64(s.estimated))
		one("pgstandby_backup_rate_bytes_per_second", "gauge", "Average copy rate of the current attempt.", s.rate)
	}
	if !s.start.IsZero() {
		one("pgstandby_backup_start_timestamp_seconds", "gauge", "When the current attempt started.", epoch(s.start))
	}
	if !s.lastSuccess.IsZero() {
		one("pgstandby_backup_last_success_timestamp_seconds", "gauge", "When the backup finished and the standby was ready.", epoch(s.lastSuccess))
	}
	if !s.lastFailure.IsZero() {
		one("pgstandby_backup_last_failure_timestamp_seconds", "gauge", "When the last attempt failed.", epoch(s.lastFailure))
	}
	if s.class != "" {
		metric("pgstandby_backup_last_failure_info", "gauge", "Class of the last failure (transient, config, refused, corrupt, protocol).")
		sample("pgstandby_backup_last_failure_info", inst+`,class="`+labelValue(s.class)+`"`, 1)
	}
	if s.health != nil {
		s.health.render(&b, inst, metric, sample, one)
	}
	return b.Bytes()
}

// render adds a finished standby's health.
func (h *Health) render(b *bytes.Buffer, inst string, metric func(string, string, string), sample func(string, string, float64), one func(string, string, string, float64)) {
	r := h.Report
	metric("pgstandby_standby_state", "gauge", "State of the finished standby as pg-standby status says it: 1 for the current one.")
	sample("pgstandby_standby_state", inst+`,state="`+labelValue(h.State)+`"`, 1)
	one("pgstandby_standby_postmaster_running", "gauge", "1 when the standby's postgres accepts connections.", b2f(r.Postmaster == "running"))
	one("pgstandby_standby_streaming", "gauge", "1 when the standby is in recovery and its WAL receiver streams.", b2f(r.Streaming))
	if r.InRecovery != nil {
		one("pgstandby_standby_in_recovery", "gauge", "1 when the server is in recovery (0: promoted).", b2f(*r.InRecovery))
	}
	one("pgstandby_standby_wal_removed", "gauge", "1 when the primary no longer has the WAL the standby needs.", b2f(r.WALRemoved))
	if r.LagBytes != nil {
		one("pgstandby_standby_replay_lag_bytes", "gauge", "Replay behind the primary's WAL end as last reported.", float64(*r.LagBytes))
	}
	if r.LagSeconds != nil {
		one("pgstandby_standby_replay_lag_seconds", "gauge", "Replay lag in time (0 when caught up).", *r.LagSeconds)
	}
}

func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// labelValue escapes a label value as the exposition format wants.
func labelValue(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}
