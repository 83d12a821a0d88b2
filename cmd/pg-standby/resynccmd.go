package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg-standby/pg-standby/internal/incremental"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/replconn"
	"github.com/pg-standby/pg-standby/internal/wal"
)

// refusal is a resync that must not happen: why, what to do, exit status.
type refusal struct {
	code       int
	why, hint  string
	underlying error
}

func (r *refusal) Error() string {
	if r.hint == "" {
		return r.why
	}
	return r.why + "; " + r.hint
}

func (r *refusal) Unwrap() error { return r.underlying }

// resyncCmd turns a stopped standby (or a cleanly stopped former primary
// with --full) into a pending instance whose next run brings it up to date.
func resyncCmd(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("resync", flag.ContinueOnError)
	pgdata := fs.String("pgdata", "", "data directory of an instance given directly (instead of INSTANCE)")
	full := fs.Bool("full", false, "take a full backup over the directory (file-level delta) instead of changed blocks only")
	if err := parseInterspersed(fs, args); err != nil {
		return parseExit(err)
	}
	in, err := instanceArg(fs, *pgdata, "", false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pg-standby resync:", err)
		return exitUsage
	}
	mode := instance.ResyncBlock
	if *full {
		mode = instance.ResyncFull
	}
	// The instance lock, held from the checks to the writes: no worker
	// starts on the directory in between.
	lock, err := in.Lock()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pg-standby resync: %v\n", err)
		return exitRefused
	}
	defer lock.Release()
	rec, keep, notes, err := resyncChecks(ctx, in, mode)
	for _, n := range notes {
		fmt.Fprintln(os.Stderr, "pg-standby resync: note: "+n)
	}
	if err != nil {
		var r *refusal
		if errors.As(err, &r) {
			fmt.Fprintf(os.Stderr, "pg-standby resync: refusing %s: %v\n", in.DataDir, err)
			return r.code
		}
		fmt.Fprintln(os.Stderr, "pg-standby resync:", err)
		return exitCode(err)
	}
	if err := in.StartResync(rec, keep); err != nil {
		fmt.Fprintln(os.Stderr, "pg-standby resync:", err)
		return exitTransient
	}
	fmt.Printf("%s is a pending instance (%s resync from %s on timeline %d, recorded in %s)\n",
		in.DataDir, rec.Mode, rec.Prior, rec.PriorTLI, instance.ResyncFile)
	if rec.Mode == instance.ResyncBlock {
		fmt.Println("the next run receives only the blocks changed since then (or, where the primary cannot send them, takes a full backup over the directory)")
	}
	fmt.Printf("bring it up to date with:  systemctl start %s  (or pg-standby run)\n", unitName(in))
	return exitOK
}

// resyncChecks checks the directory, then the primary, and returns the
// record to write and the configuration to keep; the caller holds the lock.
func resyncChecks(ctx context.Context, in *instance.Instance, mode instance.ResyncMode) (*instance.Resync, []string, []string, error) {
	ctl, err := checkStoppedStandby(in)
	if err != nil {
		return nil, nil, nil, err
	}
	conf, keep, err := in.OwnConfig()
	if err != nil {
		return nil, nil, nil, &refusal{code: exitConfig, why: err.Error()}
	}
	ci, ok := conf.Get("primary_conninfo")
	if !ok || strings.TrimSpace(ci.Value) == "" {
		return nil, nil, nil, &refusal{code: exitConfig, why: "primary_conninfo is not set in " + in.ConfFile + " (or the files it includes)",
			hint: "set it there (the standby's postgresql.auto.conf is the primary's copy and is not read)"}
	}
	cfg, err := resyncConninfo(ci.Value)
	if err != nil {
		return nil, nil, nil, &refusal{code: exitConfig, why: fmt.Sprintf("primary_conninfo in %s line %d: %v", ci.File, ci.Line, err)}
	}
	if instance.PointsAtItself(cfg, instance.Port(conf)) {
		return nil, nil, nil, &refusal{code: exitConfig, why: fmt.Sprintf("primary_conninfo in %s line %d points at this instance itself", ci.File, ci.Line)}
	}
	rec := &instance.Resync{Mode: mode, SystemID: ctl.SystemID, Prior: ctl.Redo, PriorTLI: ctl.TLI, State: ctl.State,
		Checkpoint: ctl.Checkpoint, MinRecovery: ctl.MinRecovery, MinRecoveryTLI: ctl.MinRecoveryTLI, Created: time.Now()}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	notes, err := checkPrimary(cctx, in, cfg, ctl, mode)
	return rec, keep, notes, err
}

// checkStoppedStandby refuses a directory that is not a stopped copy of a
// cluster: already pending, a server running, no or a broken pg_control.
func checkStoppedStandby(in *instance.Instance) (*instance.Control, error) {
	fi, err := os.Lstat(in.DataDir)
	if err != nil || !fi.IsDir() {
		return nil, &refusal{code: exitRefused, why: fmt.Sprintf("%s is not a data directory (%v)", in.DataDir, err), hint: "make a new standby with pg-standby init"}
	}
	if _, err := os.Lstat(filepath.Join(in.DataDir, instance.BackupSignal)); err == nil {
		return nil, &refusal{code: exitRefused, why: "it is already a pending instance (" + instance.BackupSignal + " is there)",
			hint: "take its backup with pg-standby run or systemctl start " + unitName(in)}
	}
	if why := in.LiveServer(); why != "" {
		return nil, &refusal{code: exitRefused, why: why, hint: "stop that server first (systemctl stop postgresql@..., pg_ctl stop); resync works on a stopped standby"}
	}
	ctl, err := instance.ReadControl(in.DataDir)
	if errors.Is(err, instance.ErrNoControl) {
		return nil, &refusal{code: exitRefused, why: "it has no " + instance.PgControl + ": it is no copy of a cluster (or a half-finished one)",
			hint: "make it a minimal instance with pg-standby init (an empty directory), or resync a complete standby", underlying: err}
	}
	if err != nil {
		return nil, &refusal{code: exitRefused, why: fmt.Sprintf("its %s cannot be read: %v", instance.PgControl, err),
			hint: "its prior state is unknown: start from a fresh copy (an empty directory and pg-standby init)", underlying: err}
	}
	return ctl, nil
}

// resyncConninfo parses the conninfo as the worker will use it; run as root,
// passwords come from the postgres user's ~/.pgpass, as the worker's do.
func resyncConninfo(conninfo string) (*pgconn.Config, error) {
	home, uid := workerPassfile()
	if err := instance.CheckPassfile(conninfo, home, uid); err != nil {
		return nil, err
	}
	return replconn.ParseConninfo(conninfo)
}

// workerPassfile is the home and uid whose ~/.pgpass the worker reads: the
// postgres user's when run as root (PGPASSFILE then points there unless set),
// else the caller's own.
func workerPassfile() (home string, uid int) {
	home, uid = instance.UserHome(), os.Geteuid()
	if uid == 0 {
		if u, err := user.Lookup("postgres"); err == nil {
			home = u.HomeDir
			uid, _ = strconv.Atoi(u.Uid)
			if os.Getenv("PGPASSFILE") == "" {
				os.Setenv("PGPASSFILE", filepath.Join(u.HomeDir, ".pgpass"))
			}
		}
	}
	return home, uid
}

// checkPrimary compares the directory with the primary: same system, same
// major, a prior state inside the primary's timeline history; in block
// mode, a primary that can send changed blocks back to the prior start.
func checkPrimary(ctx context.Context, in *instance.Instance, cfg *pgconn.Config, ctl *instance.Control, mode instance.ResyncMode) ([]string, error) {
	var summaries func() incremental.Coverage
	if mode == instance.ResyncBlock {
		var stop func()
		summaries, stop = readSummaries(ctx, cfg, ctl)
		defer stop()
	}
	conn, err := replconn.Connect(ctx, cfg, nopLogger())
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	sys, err := replconn.IdentifySystem(ctx, conn)
	if err != nil {
		return nil, err
	}
	if sys.SystemID != strconv.FormatUint(ctl.SystemID, 10) {
		return nil, &refusal{code: exitRefused, why: fmt.Sprintf("its system identifier %d (pg_control) is not the primary's %s (IDENTIFY_SYSTEM): it is a copy of another cluster", ctl.SystemID, sys.SystemID),
			hint: "check primary_conninfo; to make it a standby of this primary, start from an empty directory with pg-standby init"}
	}
	if err := sameMajor(in, conn); err != nil {
		return nil, err
	}
	hist, err := incremental.ReadHistory(ctx, conn, sys.Timeline)
	if err != nil {
		return nil, err
	}
	var notes []string
	if err := checkHistory(hist, ctl, sys.XLogPos, in.DataDir); err != nil {
		if mode == instance.ResyncBlock {
			return nil, err
		}
		notes = append(notes, err.Error()+": --full copies every file again, byte-compared, and discards what it wrote after it left the primary's history")
	}
	if mode == instance.ResyncFull {
		return notes, nil
	}
	return checkBlockMode(ctx, conn, summaries, ctl, notes)
}

// sameMajor: a standby runs the primary's major version.
func sameMajor(in *instance.Instance, conn *pgconn.PgConn) error {
	mine, err := in.PGVersion()
	if err != nil {
		return &refusal{code: exitRefused, why: err.Error(), hint: "start from a fresh copy (an empty directory and pg-standby init)"}
	}
	theirs, _, _ := strings.Cut(conn.ParameterStatus("server_version"), ".")
	if theirs != mine {
		return &refusal{code: exitRefused, why: fmt.Sprintf("it is PostgreSQL %s and the primary runs %s", mine, conn.ParameterStatus("server_version")),
			hint: "a standby runs its primary's major version: make a new instance of that version with pg-standby init"}
	}
	return nil
}

// checkHistory refuses a prior state the primary's history does not hold:
// pages on disk reach at most minRecoveryPoint on a standby; a cleanly
// shut down primary wrote nothing past its shutdown checkpoint record
// (which ends past its start: +1); a crashed primary may have written
// anything its WAL after the checkpoint holds, which is not read here.
func checkHistory(h *incremental.History, ctl *instance.Control, pos wal.LSN, dir string) error {
	type point struct {
		tli uint32
		lsn wal.LSN
	}
	points := []point{{ctl.TLI, ctl.Checkpoint + 1}}
	if ctl.MinRecovery != 0 {
		points = append(points, point{ctl.MinRecoveryTLI, ctl.MinRecovery})
	}
	for _, p := range points {
		if err := h.Contains(p.tli, p.lsn, pos); err != nil {
			return &refusal{code: exitRefused, why: "its prior state " + err.Error() + ": it is a former primary (or a standby of one) that went on after a failover",
				hint: "pg_rewind is the tool for that (pg_rewind --target-pgdata " + dir + " --source-server '...', then start it as a standby); or pg-standby resync --full to copy everything again", underlying: err}
		}
	}
	switch ctl.State {
	case instance.DBShutdowned, instance.DBShutdownedInRecovery, instance.DBInArchiveRecovery: // a killed standby: pages ≤ minRecoveryPoint
		return nil
	}
	return &refusal{code: exitRefused, why: fmt.Sprintf("its pg_control says %q: a primary that did not shut down cleanly may have written pages past its last checkpoint (%s) that are in no summary", ctl.State, ctl.Checkpoint),
		hint: "start and stop it cleanly first (it then is a cleanly shut down former primary), use pg_rewind, or pg-standby resync --full"}
}

// checkBlockMode refuses changed-blocks resync where the primary cannot do
// it: below 17, summarize_wal off, summaries that start after the prior LSN.
func checkBlockMode(ctx context.Context, conn *pgconn.PgConn, summaries func() incremental.Coverage, ctl *instance.Control, notes []string) ([]string, error) {
	full := "pg-standby resync --full takes a full backup over the directory instead (every byte received again, only differing ones written)"
	set, err := replconn.ShowAll(ctx, conn, incremental.ProbeSettings)
	if err != nil {
		return notes, err
	}
	if _, err := incremental.ProbeServer(set, incremental.ServerMajor(conn)); err != nil {
		var fe *incremental.FallbackError
		if errors.As(err, &fe) {
			hint := full
			if errors.Is(err, incremental.ErrSummarizeWALOff) {
				hint = "enable it on the primary (ALTER SYSTEM SET summarize_wal = on; SELECT pg_reload_conf()) and resync once its summaries reach back to " +
					ctl.Redo.String() + " (they start when it is enabled: a standby stopped before then needs --full); or " + full
			}
			return notes, &refusal{code: exitConfig, why: err.Error(), hint: hint, underlying: err}
		}
		return notes, err
	}
	cov := summaries()
	switch {
	case !cov.Known:
		notes = append(notes, "the primary's WAL summaries could not be read ("+cov.Why+"); the primary checks them when the backup starts, and the backup is a full one if they do not reach back to "+ctl.Redo.String())
	case !cov.Covered && cov.Oldest == 0:
		return notes, &refusal{code: exitConfig, why: fmt.Sprintf("the primary has no WAL summaries on timeline %d, the standby's", ctl.TLI), hint: full}
	case !cov.Covered && cov.Gap != 0:
		return notes, &refusal{code: exitConfig, why: fmt.Sprintf("the primary's WAL summaries on timeline %d have a gap after %s, between the standby's prior start %s and now", ctl.TLI, cov.Gap, ctl.Redo), hint: full}
	case !cov.Covered:
		return notes, &refusal{code: exitConfig, why: fmt.Sprintf("the primary's WAL summaries on timeline %d start at %s, after the standby's prior start %s (removed, or summarize_wal enabled later)", ctl.TLI, cov.Oldest, ctl.Redo), hint: full}
	}
	return notes, nil
}

// readSummaries reads the primary's WAL summaries (a database connection of
// its own) while the replication connection checks the rest; get waits for
// the answer, stop ends the reading and waits for it.
func readSummaries(ctx context.Context, cfg *pgconn.Config, ctl *instance.Control) (get func() incremental.Coverage, stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan incremental.Coverage, 1)
	go func() { ch <- incremental.CheckSummaries(ctx, cfg, ctl.TLI, ctl.Redo) }()
	get = sync.OnceValue(func() incremental.Coverage { return <-ch })
	return get, func() { cancel(); get() }
}
