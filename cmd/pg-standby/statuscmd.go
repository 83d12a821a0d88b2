package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/unit"
	"github.com/godbus/dbus/v5"

	"github.com/pg-standby/pg-standby/internal/busapi"
	"github.com/pg-standby/pg-standby/internal/health"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/printable"
	"github.com/pg-standby/pg-standby/internal/progress"
)

// The states of an instance in status and list (the "state" of --json).
const (
	stateRunning     = "running"     // a worker holds the instance's lock
	stateNotStarted  = "not-started" // basebackup.signal, no attempt has written yet
	stateInterrupted = "interrupted" // basebackup.signal after an attempt: resumable, not running
	stateFailed      = "failed"      // basebackup.signal, every attempt failed before writing
	stateStandby     = "standby"     // a complete standby: postgres runs, in recovery, streaming
	stateStarting    = "starting"    // copied; postgres is starting (not yet accepting connections)
	stateNotRunning  = "not-running" // copied, but postgres is not running
	stateNotStream   = "not-streaming"
	stateFellBehind  = "fell-behind" // the primary removed the WAL the standby needs: resync
	statePromoted    = "promoted"    // copied, but no longer in recovery
	stateOther       = "other"       // a data directory that is neither (a primary, a plain cluster)
	stateMissing     = "missing"     // no data directory
	stateUnknown     = "unknown"     // unreadable (see error)
)

// instanceStatus is one instance in `status --json` (and list). The field
// names are a stable interface, documented in README.md; fields are only
// ever added.
type instanceStatus struct {
	Instance      string     `json:"instance"`
	DataDirectory string     `json:"data_directory"`
	State         string     `json:"state"`
	Running       bool       `json:"running"`
	PID           int        `json:"pid,omitempty"`
	Attempt       int        `json:"attempt"`
	LastError     string     `json:"last_error,omitempty"`
	LastFailure   string     `json:"last_failure,omitempty"`
	Error         string     `json:"error,omitempty"`
	Job           *jobStatus `json:"job,omitempty"`
	Unit          *unitState `json:"unit,omitempty"`
	// Health of a copied standby (absent while a backup is pending).
	Health       *health.Report `json:"health,omitempty"`
	PostgresUnit *unitState     `json:"postgres_unit,omitempty"`
	// Copy: an "other" directory copied by pg-standby (patroni-replica's
	// bare copy), as its backup_label says.
	Copy *instance.Copy `json:"copy,omitempty"`
}

// jobStatus is a running worker's state, read over D-Bus.
type jobStatus struct {
	BusName         string   `json:"bus_name"`
	Phase           string   `json:"phase"`
	BytesDone       uint64   `json:"bytes_done"`
	BytesTotal      uint64   `json:"bytes_total"`
	Progress        *float64 `json:"progress"`
	Rate            uint64   `json:"rate"`
	StartTime       string   `json:"start_time,omitempty"`
	ExpectedEndTime string   `json:"expected_end_time,omitempty"`
	Primary         string   `json:"primary,omitempty"`
	StartLSN        string   `json:"start_lsn,omitempty"`
	EndLSN          string   `json:"end_lsn,omitempty"`
	Cancelable      bool     `json:"cancelable"`
	// What kind of attempt runs ("resuming: N of M files kept, changed
	// blocks only"), and the bytes it kept instead of receiving them.
	AttemptKind string `json:"attempt_kind,omitempty"`
	BytesReused uint64 `json:"bytes_reused,omitempty"`
}

// unitState is the backup unit as systemd sees it.
type unitState struct {
	Name        string `json:"name"`
	ActiveState string `json:"active_state"`
	SubState    string `json:"sub_state"`
	NRestarts   int    `json:"n_restarts"`
	Result      string `json:"result,omitempty"`
}

func statusCmd(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON (stable; see README.md)")
	pgdata := fs.String("pgdata", "", "data directory of an instance given directly (instead of INSTANCE)")
	if err := parseInterspersed(fs, args); err != nil {
		return parseExit(err)
	}
	if *pgdata == "" && fs.NArg() == 0 {
		printAll(knownInstances(ctx), *asJSON)
		return exitOK
	}
	in, err := instanceArg(fs, *pgdata, "", false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pg-standby status:", err)
		return exitUsage
	}
	var jobs map[string]busapi.Job
	if conn, err := busapi.Connect(); err == nil {
		if j, ok, err := busapi.Lookup(conn, in.DataDir); err == nil && ok {
			jobs = map[string]busapi.Job{in.DataDir: j}
		}
		conn.Close()
	}
	st := inspectInstance(ctx, in, jobs)
	if *asJSON {
		out, _ := json.MarshalIndent(st, "", "  ")
		fmt.Println(string(out))
	} else {
		fmt.Println(fitLine(st.line()))
	}
	return st.exitStatus()
}

// exitStatus of status: 0 for a working standby or a backup that is
// pending, running or was stopped; 1 when the state cannot be known (no
// data directory, unreadable); 3 for a failure that needs the admin.
func (st instanceStatus) exitStatus() int {
	switch st.State {
	case stateUnknown, stateMissing:
		return exitTransient
	case stateFailed, stateNotRunning, stateNotStream, stateFellBehind, statePromoted:
		return exitFailedState
	case stateInterrupted:
		if st.LastError != "" && !st.stopped() {
			return exitFailedState
		}
	}
	return exitOK
}

// stopped: the last attempt was stopped (systemctl stop, Cancel), not failed.
func (st instanceStatus) stopped() bool {
	return st.LastError == stoppedError
}

// inspectInstance finds out what an instance is: live from its worker on
// the bus (jobs, by data directory), else from the directory.
func inspectInstance(ctx context.Context, in *instance.Instance, jobs map[string]busapi.Job) instanceStatus {
	name := in.Name
	if name == "" {
		name = in.DataDir
	}
	st := instanceStatus{Instance: name, DataDirectory: in.DataDir}
	st.PID = instance.LockHolder(in.DataDir)
	if j, ok := jobs[in.DataDir]; ok {
		st.Job = jobOf(j)
		st.Attempt = int(j.Attempt)
		st.LastError = j.LastError
	}
	st.Running = st.PID != 0 || st.Job != nil
	st.Unit = systemdUnit(ctx, in)
	if st.Running {
		st.State = stateRunning
		if st.Job == nil {
			st.fromDisk(in) // attempt and last error, as far as readable
			st.State, st.Error = stateRunning, ""
		}
		return st
	}
	st.fromDisk(in)
	if st.State == stateStandby {
		st.PostgresUnit = postgresUnit(ctx, in)
		h, err := standbyHealth(ctx, in)
		if err != nil {
			st.State, st.Error = stateUnknown, err.Error()
			return st
		}
		st.Health, st.State = h, healthState(h)
	}
	return st
}

// healthState is the state a copied standby's health makes.
func healthState(h *health.Report) string {
	switch {
	case h.Postmaster == "not-running":
		return stateNotRunning
	case h.Postmaster != "running":
		return stateStarting
	case h.InRecovery == nil:
		return stateUnknown
	case !*h.InRecovery:
		return statePromoted
	case h.WALRemoved:
		return stateFellBehind
	case !h.Streaming:
		return stateNotStream
	}
	return stateStandby
}

// dirStates are the states the data directory alone can give.
var dirStates = map[instance.DirState]string{
	instance.DirMissing: stateMissing, instance.DirUnreadable: stateUnknown, instance.DirStandby: stateStandby,
	instance.DirOther: stateOther, instance.DirNotStarted: stateNotStarted, instance.DirInterrupted: stateInterrupted,
	instance.DirFailed: stateFailed,
}

// fromDisk sets the state from the data directory's signal files.
func (st *instanceStatus) fromDisk(in *instance.Instance) {
	d := in.Status()
	st.State = dirStates[d.State]
	switch d.State {
	case instance.DirUnreadable:
		st.Error = d.Err.Error()
	case instance.DirOther:
		st.Copy = d.Copy
	case instance.DirNotStarted, instance.DirInterrupted, instance.DirFailed:
		p := d.Pending
		st.Attempt, st.LastError = p.Attempts, p.LastError
		if !p.LastFailure.IsZero() {
			st.LastFailure = p.LastFailure.UTC().Format(time.RFC3339)
		}
	}
}

// pendingError is the instance's recorded last failure, for the bus's
// LastError property.
func pendingError(in *instance.Instance) string {
	p, err := in.Pending()
	if err != nil {
		return ""
	}
	return p.LastError
}

func jobOf(j busapi.Job) *jobStatus {
	js := &jobStatus{
		BusName: j.BusName, Phase: j.Phase, BytesDone: j.BytesDone, BytesTotal: j.BytesTotal, Rate: j.Rate,
		Primary: j.Primary, StartLSN: j.StartLSN, EndLSN: j.EndLSN, Cancelable: j.Cancelable,
		AttemptKind: j.AttemptKind, BytesReused: j.BytesReused,
	}
	if j.ProgressValid {
		p := j.Progress
		js.Progress = &p
	}
	if !j.StartTime.IsZero() {
		js.StartTime = j.StartTime.UTC().Format(time.RFC3339)
	}
	if !j.ExpectedEndTime.IsZero() {
		js.ExpectedEndTime = j.ExpectedEndTime.UTC().Format(time.RFC3339)
	}
	return js
}

// unitName is the backup unit of an instance: pg-standby@15-main.service
// for a Debian cluster, else the systemd-escaped data directory.
func unitName(in *instance.Instance) string {
	if in.Debian != nil {
		return "pg-standby@" + in.Name + ".service"
	}
	return "pg-standby@" + unit.UnitNamePathEscape(in.DataDir) + ".service"
}

// systemdUnit asks systemctl about the instance's backup unit; nil without
// systemd (or for a unit systemd does not know).
func systemdUnit(ctx context.Context, in *instance.Instance) *unitState {
	return unitNamed(ctx, unitName(in))
}

// postgresUnit is the unit that runs the instance's postgres: Debian's
// postgresql@ or pg-standby-postgres@ for a path instance.
func postgresUnit(ctx context.Context, in *instance.Instance) *unitState {
	if in.Debian != nil {
		return unitNamed(ctx, "postgresql@"+in.Name+".service")
	}
	return unitNamed(ctx, "pg-standby-postgres@"+unit.UnitNamePathEscape(in.DataDir)+".service")
}

func unitNamed(ctx context.Context, name string) *unitState {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "/usr/bin/systemctl", "show", "-p", "LoadState,ActiveState,SubState,NRestarts,Result", "--", name).Output()
	if err != nil {
		return nil
	}
	u := &unitState{Name: name}
	loaded := false
	for _, line := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "LoadState":
			loaded = v == "loaded"
		case "ActiveState":
			u.ActiveState = v
		case "SubState":
			u.SubState = v
		case "NRestarts":
			u.NRestarts, _ = strconv.Atoi(v)
		case "Result":
			u.Result = v
		}
	}
	if !loaded {
		return nil
	}
	return u
}

// line is the one-line human form.
func (st instanceStatus) line() string {
	var b strings.Builder
	b.WriteString(st.Instance)
	b.WriteString(": ")
	switch st.State {
	case stateRunning:
		b.WriteString("running")
		if j := st.Job; j != nil {
			b.WriteString(", " + jobLine(st.Attempt, j))
			if j.Phase == busapi.PhaseRetry && st.LastError != "" {
				b.WriteString(": " + oneLineError(st.LastError))
			}
		} else if st.PID != 0 {
			fmt.Fprintf(&b, " (pid %d; no live status on D-Bus)", st.PID)
		}
	case stateNotStarted:
		b.WriteString("backup not started")
	case stateFailed:
		fmt.Fprintf(&b, "backup not started: attempt %d failed: %s", st.Attempt, oneLineError(st.LastError))
	case stateInterrupted:
		fmt.Fprintf(&b, "backup in progress, not running: attempt %d", st.Attempt)
		if st.stopped() {
			b.WriteString(" stopped")
		} else if st.LastError != "" {
			fmt.Fprintf(&b, " failed: %s", oneLineError(st.LastError))
		}
	case stateStandby, stateStarting, stateNotRunning, stateNotStream, stateFellBehind, statePromoted:
		b.WriteString(healthLine(st.State, st.Health, st.PostgresUnit))
	case stateOther:
		b.WriteString("not a pg-standby instance")
		if st.Copy != nil {
			b.WriteString(": " + copyLine(st.Copy))
		}
	case stateMissing:
		b.WriteString("no data directory " + st.DataDirectory)
	default:
		b.WriteString("unknown: " + st.Error)
	}
	if u := st.Unit; u != nil {
		fmt.Fprintf(&b, " [%s %s/%s", strings.TrimSuffix(u.Name, ".service"), u.ActiveState, u.SubState)
		if u.NRestarts > 0 {
			fmt.Fprintf(&b, ", %d restarts", u.NRestarts)
		}
		b.WriteString("]")
	}
	return b.String()
}

// jobLine is a live job as "attempt 2: copying 1.2 of 3.4 GiB (35%), 12.0 MiB/s, 1m30s left",
// with the kind of attempt first, as STATUS= has it ("attempt 2: resuming: 412 of
// 980 files kept, changed blocks only; copying …, 3.1 GiB reused").
func jobLine(attempt int, j *jobStatus) string {
	if j.Phase == busapi.PhaseRetry {
		return fmt.Sprintf("attempt %d failed, waiting to retry", attempt)
	}
	var s string
	if attempt > 0 {
		s = fmt.Sprintf("attempt %d: ", attempt)
	}
	if j.AttemptKind != "" {
		s += j.AttemptKind + "; "
	}
	s += j.Phase
	if j.Phase != busapi.PhaseCopying {
		return s
	}
	s += " " + progress.Bytes(int64(j.BytesDone))
	if j.Progress != nil {
		s += fmt.Sprintf(" of %s (%d%%)", progress.Bytes(int64(j.BytesTotal)), int(*j.Progress*100))
	}
	if j.Rate > 0 {
		s += fmt.Sprintf(", %s/s", progress.Bytes(int64(j.Rate)))
	}
	if t, err := time.Parse(time.RFC3339, j.ExpectedEndTime); err == nil {
		if left := time.Until(t).Round(time.Second); left > 0 {
			s += fmt.Sprintf(", %s left", left)
		}
	}
	if j.BytesReused > 0 {
		s += ", " + progress.Bytes(int64(j.BytesReused)) + " reused"
	}
	return s
}

// oneLineError makes a recorded error one bounded line (fitLine cuts it
// to a terminal's width).
func oneLineError(s string) string { return printable.OneLine(s, 500) }

// fitLine cuts a line to the terminal's width when stdout is a terminal.
func fitLine(s string) string {
	s = printable.Escape(s) // the last error quotes the primary
	cols, ok := progress.Width(os.Stdout)
	if !ok || cols < 20 {
		return s
	}
	if r := []rune(s); len(r) > cols {
		return string(r[:cols-1]) + "…"
	}
	return s
}

// busJobs reads every worker on the bus, by data directory; nil without a bus.
func busJobs() map[string]busapi.Job {
	conn, err := busapi.Connect()
	if err != nil {
		return nil
	}
	defer conn.Close()
	return jobsByDir(conn)
}

func jobsByDir(conn *dbus.Conn) map[string]busapi.Job {
	list, err := busapi.List(conn)
	if err != nil {
		return nil
	}
	m := make(map[string]busapi.Job, len(list))
	for _, j := range list {
		m[j.DataDirectory] = j
	}
	return m
}

// copyLine says what a directory pg-standby copied but does not manage is,
// from its backup_label, and who to ask instead.
func copyLine(c *instance.Copy) string {
	s := "a copy made by pg-standby"
	if c.Patroni {
		s = "a bare copy made by pg-standby patroni-replica (a Patroni replica method)"
	}
	var from []string
	if c.StartTime != "" {
		from = append(from, "started "+c.StartTime)
	}
	if c.StartLSN != "" {
		from = append(from, "at WAL "+c.StartLSN)
	}
	if c.Timeline != "" {
		from = append(from, "timeline "+c.Timeline)
	}
	if len(from) > 0 {
		s += ", backup " + strings.Join(from, ", ")
	}
	if c.File == "backup_label.old" {
		s += "; postgres has run on it since; no standby.signal"
	} else {
		s += "; no standby.signal, no primary_conninfo of pg-standby's"
	}
	if c.Patroni {
		s += "; Patroni configures and runs it: ask Patroni (patronictl list)"
	}
	return s
}
