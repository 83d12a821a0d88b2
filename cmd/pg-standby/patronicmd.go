package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/busapi"
	"github.com/pg-standby/pg-standby/internal/durable"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/journald"
	"github.com/pg-standby/pg-standby/internal/pgconf"
	"github.com/pg-standby/pg-standby/internal/progress"
	"github.com/pg-standby/pg-standby/internal/service"
)

// patroniConf holds, inside the data directory, the primary_conninfo that
// patroni-replica was given: kept out of the primary's stream (a kept file)
// and removed once the copy is done. A copy killed before leaves it for
// the retry, which rewrites it.
const patroniConf = "pg-standby-patroni.conf"

// patroniArgs are the options Patroni passes (every key of the method's
// section as --key=value); keys are matched with '_' read as '-'.
type patroniArgs struct {
	scope, role, dataDir, connstring string
	opt                              backup.Options
	retries                          int
	verbose                          bool
	ignored                          []string // unknown keys, logged by name only
}

// parsePatroniArgs reads Patroni's --key=value arguments. Unknown keys are
// accepted (the section may hold keep_data, no_leader and the like).
func parsePatroniArgs(args []string) (*patroniArgs, error) {
	a := &patroniArgs{role: "replica", retries: 2}
	for _, arg := range args {
		kv, ok := strings.CutPrefix(arg, "--")
		key, val, hasVal := strings.Cut(kv, "=")
		if !ok || key == "" {
			return nil, fmt.Errorf("want --key=value arguments (Patroni's convention), got an argument of %d bytes", len(arg))
		}
		var err error
		switch strings.ReplaceAll(key, "_", "-") {
		case "scope":
			a.scope = val
		case "role":
			a.role = val
		case "datadir":
			a.dataDir = val
		case "connstring":
			a.connstring = val
		case "max-rate":
			a.opt.MaxRateKB, err = strconv.ParseInt(val, 10, 64)
		case "checkpoint":
			a.opt.Checkpoint = val
		case "compress":
			a.opt.Compression = val
		case "retries":
			a.retries, err = strconv.Atoi(val)
		case "verbose":
			a.verbose = !hasVal || val == "" || pgconfBool(val)
		default:
			a.ignored = append(a.ignored, key)
		}
		if err != nil {
			return nil, fmt.Errorf("--%s: not a number", key)
		}
	}
	switch {
	case a.role != "replica":
		return nil, fmt.Errorf("--role=%s: only replica is supported", a.role)
	case a.dataDir == "" || !filepath.IsAbs(a.dataDir):
		return nil, errors.New("--datadir=DIR (absolute) is required")
	case strings.TrimSpace(a.connstring) == "":
		return nil, errors.New("--connstring is empty: Patroni has no member to copy from (no_leader methods are not supported)")
	}
	return a, nil
}

// noNotify drops what service.Run tells systemd (its READY=1 says
// "standby ready"): Patroni's unit, not this command, talks to systemd.
type noNotify struct{}

func (noNotify) Status(string)               {}
func (noNotify) Ready(string)                {}
func (noNotify) Stopping(string)             {}
func (noNotify) ExtendTimeout(time.Duration) {}

func pgconfBool(v string) bool {
	on, err := pgconf.ParseBool(v)
	return err == nil && on
}

// patroniReplicaCmd is a Patroni create_replica_methods command: a copy of
// the primary into --datadir, nothing more. Patroni writes the recovery
// configuration and starts postgres once this exits 0; any other status
// makes it try the next method.
func patroniReplicaCmd(ctx context.Context, args []string) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Print(patroniUsage)
		return exitOK
	}
	a, err := parsePatroniArgs(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pg-standby patroni-replica:", err)
		return exitUsage
	}
	level := slog.LevelInfo
	if a.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(journald.NewHandlerTo(os.Stderr, a.dataDir, level))
	if len(a.ignored) > 0 {
		log.Info("ignoring options pg-standby does not know (values not shown)", "keys", strings.Join(a.ignored, ","))
	}
	if os.Geteuid() == 0 {
		log.Error("refusing to run as root: run it as the user Patroni and postgres run as")
		return exitRefused
	}
	if instance.HasPassword(a.connstring) {
		log.Warn("the connection string carries a password, visible in the process list: let Patroni pass it in PGPASSFILE")
	}
	// Before the directory is touched: Patroni's pgpass must be a file libpq
	// (and so the replica's walreceiver) would read.
	if err := instance.CheckPassfile(a.connstring, instance.UserHome(), os.Getuid()); err != nil {
		log.Error("cannot authenticate to the primary: "+err.Error(), "pgdata", a.dataDir)
		return exitConfig
	}
	// Patroni's unit, not this command, talks to systemd.
	os.Unsetenv("NOTIFY_SOCKET")
	in, err := preparePatroniDir(a.dataDir, a.connstring, log)
	if err != nil {
		log.Error("cannot copy into the data directory: "+err.Error(), "pgdata", a.dataDir)
		return exitCode(err)
	}
	a.opt.Instance, a.opt.Log, a.opt.CopyOnly = in, log, true
	// backup_label then says who made the copy: status and wait read it.
	a.opt.Label = instance.PatroniLabelPrefix + in.DataDir
	return runPatroniCopy(ctx, a, in, log)
}

// runPatroniCopy takes the backup as run does, with in-process retries of
// transient failures, and leaves a bare copy.
func runPatroniCopy(ctx context.Context, a *patroniArgs, in *instance.Instance, log *slog.Logger) int {
	ctx, cancelRun := context.WithCancelCause(ctx)
	defer cancelRun(nil)
	bus := busapi.New(busapi.Config{
		Instance: in.DataDir, DataDir: in.DataDir, Log: log,
		Cancel:    func() { cancelRun(errBusCancel) },
		LastError: func() string { return pendingError(in) },
	})
	defer bus.Close()
	stall := 5 * time.Minute
	log.Info("copying the primary for Patroni", "scope", a.scope, "pgdata", in.DataDir)
	res, err := service.Run(ctx, service.Config{
		Backup: a.opt, Log: log, Notify: noNotify{}, Retries: a.retries, Stall: stall,
		Backoff: 5 * time.Second, MaxBackoff: 30 * time.Second,
		// A copy-only backup ends in progress.CopyDone, never "standby ready".
		Sinks:      []progress.Sink{journald.ProgressSink(log, progress.Connecting, progress.CopyDone), bus},
		RetrySinks: []progress.Sink{bus},
	})
	if err != nil {
		bus.Completed(false, err.Error())
		if errors.Is(err, context.Canceled) {
			log.Info("stopped; the copy resumes when Patroni runs this again with keep_data", "by", context.Cause(ctx).Error(), "pgdata", in.DataDir)
			return exitCode(err)
		}
		log.Error("copy failed: "+err.Error(), "error", err, "kind", backup.KindOf(err).String(), "pgdata", in.DataDir)
		return exitCode(err)
	}
	if err := removePatroniConf(in.DataDir); err != nil {
		log.Error("copy done, but: "+err.Error(), "pgdata", in.DataDir)
		return exitTransient
	}
	bus.Completed(true, fmt.Sprintf("%s (%s copied, WAL up to %s)", progress.CopyDone, progress.Bytes(res.Bytes), res.End))
	log.Info("copy complete: Patroni configures and starts the replica", "phase", string(progress.CopyDone), "pgdata", in.DataDir,
		"start_lsn", res.Start.String(), "end_lsn", res.End.String(),
		"files", res.Files, "bytes", res.Bytes, "written", res.Written, "unchanged", res.Unchanged)
	return exitOK
}

// preparePatroniDir makes dir a pending pg-standby instance whose
// configuration names connstring: created 0700 when missing; an earlier
// copy (basebackup.signal) is resumed; a stopped cluster that Patroni kept
// (keep_data: reinit of a replica) loses its pg_control first, then is
// copied over, reusing the files that are already right. Anything else
// is refused: Patroni's next method wipes the directory.
func preparePatroniDir(dir, connstring string, log *slog.Logger) (*instance.Instance, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, &backup.Error{Kind: backup.Refused, Err: fmt.Errorf("create the data directory: %w", err)}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, &backup.Error{Kind: backup.Refused, Err: fmt.Errorf("open the data directory: %w", err)}
	}
	defer root.Close()
	in, err := instance.New(dir, filepath.Join(dir, patroniConf))
	if err != nil {
		return nil, &backup.Error{Kind: backup.Refused, Err: err}
	}
	pending, err := patroniDirState(root, in, log)
	if err != nil {
		return nil, err
	}
	conf := "# pg-standby patroni-replica: the primary to copy; removed when the copy is done.\n" +
		"primary_conninfo = " + pgconf.Quote(connstring) + "\n"
	if err := durable.WriteFile(root, patroniConf+".tmp", []byte(conf), 0o600); err != nil {
		return nil, err
	}
	if err := root.Rename(patroniConf+".tmp", patroniConf); err != nil {
		return nil, fmt.Errorf("replace %s: %w", patroniConf, err)
	}
	if pending == nil {
		// Recorded with nothing of the directory kept but this file: the
		// copy is the primary's, as pg_basebackup's would be.
		p := instance.Pending{Recorded: true, Keep: []string{patroniConf}}
		if err := instance.WritePending(root, p, 0o600); err != nil {
			return nil, err
		}
	}
	return in, durable.SyncDir(root, ".")
}

// patroniDirState returns the pending record of an earlier copy, or nil
// when the directory is empty or holds a stopped cluster (made ready to be
// copied over).
func patroniDirState(root *os.Root, in *instance.Instance, log *slog.Logger) (*instance.Pending, error) {
	refuse := func(reason string) error {
		return &backup.Error{Kind: backup.Refused, Err: &instance.RefusedError{Dir: in.DataDir, Reason: reason,
			Hint: "Patroni's next method (basebackup) starts from an empty directory"}}
	}
	if _, err := root.Lstat(instance.BackupSignal); err == nil {
		p, err := instance.ReadPending(root)
		if err != nil {
			return nil, err
		}
		if p.Recorded && !slices.Contains(p.Keep, patroniConf) {
			return nil, refuse("it is a pg-standby instance made by pg-standby init, not by patroni-replica")
		}
		if !p.Recorded {
			return nil, nil
		}
		log.Info("resuming the copy an earlier run left (keep_data): files already right are kept", "attempts", p.Attempts)
		return &p, nil
	}
	d, err := root.Open(".")
	if err != nil {
		return nil, fmt.Errorf("open the data directory: %w", err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("read the data directory: %w", err)
	}
	if len(names) == 0 {
		return nil, nil
	}
	if !slices.Contains(names, "PG_VERSION") {
		return nil, refuse("it holds files but no PostgreSQL cluster")
	}
	if why := in.LiveServer(); why != "" {
		return nil, refuse(why)
	}
	// From here on the old cluster must never start again: pg_control goes
	// first, durably; the copy writes the new one last.
	if err := root.Remove(instance.PgControl); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("remove the old %s: %w", instance.PgControl, err)
	}
	if _, err := root.Lstat("global"); err == nil {
		if err := durable.SyncDir(root, "global"); err != nil {
			return nil, err
		}
	}
	log.Info("copying over the stopped cluster Patroni kept (keep_data): files already right are kept")
	return nil, nil
}

func removePatroniConf(dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open the data directory: %w", err)
	}
	defer root.Close()
	if err := root.Remove(patroniConf); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", patroniConf, err)
	}
	return durable.SyncDir(root, ".")
}

const patroniUsage = `Usage:
  pg-standby patroni-replica --datadir=DIR --connstring=CONNINFO [--key=value...]

A Patroni create_replica_methods command (docs/patroni.md): copies the primary
into DIR and exits 0; Patroni then configures recovery and starts postgres.
The password comes from PGPASSFILE (Patroni's pgpass), never the command line.

Known keys (Patroni passes every key of the method's section; others are ignored):
  --scope=NAME --role=replica   passed by Patroni
  --max-rate=KB                 limit the primary's send rate, kB/s (32..1048576)
  --checkpoint=fast|spread      checkpoint mode on the primary (default fast)
  --compress=METHOD[:DETAIL]    server-side compression: gzip, lz4, zstd
  --retries=N                   transient failures retried in-process (default 2)
  --verbose=true                log debug detail

Exit status: 0 copied; 1 transient failure; 2 usage; 65 data checksum failures
on the primary; 76 protocol violation; 77 directory refused; 78 configuration
(conninfo, authentication, password file); death by SIGTERM when stopped.
`
