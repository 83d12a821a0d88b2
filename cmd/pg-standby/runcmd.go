package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/busapi"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/journald"
	"github.com/pg-standby/pg-standby/internal/metrics"
	"github.com/pg-standby/pg-standby/internal/notify"
	"github.com/pg-standby/pg-standby/internal/pgconf"
	"github.com/pg-standby/pg-standby/internal/progress"
	"github.com/pg-standby/pg-standby/internal/service"
)

// mappings collects repeated --tablespace-mapping OLD=NEW flags.
type mappings map[string]string

func (m mappings) String() string { return instance.FormatMapping(m) }
func (m mappings) Set(v string) error {
	old, new, ok := strings.Cut(v, "=")
	if !ok || old == "" || new == "" {
		return fmt.Errorf("want OLD=NEW, got %q", v)
	}
	m[old] = new
	return nil
}

func runCmd(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	opt := backup.Options{TablespaceMapping: mappings{}}
	pgdata := fs.String("pgdata", "", "data directory of an instance given directly (instead of INSTANCE)")
	fs.StringVar(&opt.ConfFile, "config-file", "", "with --pgdata: the instance's postgresql.conf (default DIR/postgresql.conf)")
	fs.StringVar(&opt.Checkpoint, "checkpoint", "", "checkpoint mode on the primary: fast or spread (default: pg_standby.checkpoint, else fast)")
	fs.Int64Var(&opt.MaxRateKB, "max-rate", 0, "limit the primary's send rate in kB/s, 32..1048576; 0: no limit for this run (default: pg_standby.max_rate)")
	fs.StringVar(&opt.ManifestChecksums, "manifest-checksums", "", "manifest checksums: CRC32C (default), SHA224, SHA256, SHA384, SHA512, NONE")
	fs.Var(mappings(opt.TablespaceMapping), "tablespace-mapping", "put the primary's tablespace at OLD at NEW here (repeatable; default: pg_standby.tablespace_mapping)")
	fs.StringVar(&opt.Compression, "compress", "", "server-side compression METHOD[:DETAIL]: gzip, lz4, zstd (e.g. zstd:level=3), or none (default: pg_standby.compression)")
	fs.Func("direct-io", "write file contents with O_DIRECT (on) or through the page cache (off) (default: pg_standby.direct_io, else on)", func(v string) error {
		on, err := pgconf.ParseBool(v)
		opt.DirectIO = &on
		return err
	})
	fs.BoolVar(&opt.CreateSlot, "create-slot", false, "create primary_slot_name on the primary if missing (default: pg_standby.create_slot)")
	retries := fs.Int("retries", 5, "transient failures retried in-process before exiting 1")
	stall := fs.Duration("stall-timeout", 5*time.Minute, "fail an attempt when no data arrived for this long")
	verbose := fs.Bool("verbose", false, "log debug detail")
	if err := parseInterspersed(fs, args); err != nil {
		return parseExit(err)
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "max-rate" && opt.MaxRateKB == 0 {
			opt.MaxRateKB = backup.NoMaxRate // lifts a stored limit, for this run
		}
	})
	in, err := instanceArg(fs, *pgdata, opt.ConfFile, false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pg-standby run:", err)
		return exitUsage
	}
	opt.Instance = in
	opt.Tune = tuneCopy
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	name := in.Name
	if name == "" {
		name = in.DataDir
	}
	// On a terminal (and not the journal's stream), one live progress line.
	var term *progress.Terminal
	var logTo io.Writer = os.Stderr
	if os.Getenv("JOURNAL_STREAM") == "" {
		if term = progress.NewTerminal(os.Stderr); term != nil {
			logTo = term
			defer term.Close()
		}
	}
	log := slog.New(journald.NewHandlerTo(logTo, name, level))
	opt.Log = log
	n := notify.New(log)
	// A finished standby: nothing to do, and nothing to publish on the bus
	// (a publisher that is closed while it connects would only log noise).
	mw := metricsWriter(in, name, log)
	if st, err := in.Inspect(); err == nil && st == instance.Standby {
		metricsStandby(ctx, mw, in)
		n.Ready("already a standby: nothing to do")
		log.Info("already a standby: nothing to do", "pgdata", in.DataDir)
		return exitOK
	}
	// Live status on the system bus. Cancel() stops the backup as SIGTERM
	// does, then the worker exits exitBusCancel (not death by SIGTERM:
	// before READY=1 systemd calls that a 'protocol' failure and restarts
	// the unit). The unit lists it in RestartPreventExitStatus=, and its
	// ExecStopPost= leaves the stop note for postgres' guard.
	ctx, cancelRun := context.WithCancelCause(ctx)
	defer cancelRun(nil)
	bus := busapi.New(busapi.Config{
		Instance: name, DataDir: in.DataDir, Log: log,
		Cancel:    func() { cancelRun(errBusCancel) },
		LastError: func() string { return pendingError(in) },
	})
	defer bus.Close()
	res, err := service.Run(ctx, service.Config{
		Backup: opt, Log: log, Notify: n, Retries: *retries, Stall: *stall,
		Backoff: 5 * time.Second, MaxBackoff: 2 * time.Minute,
		Sinks: sinks(n.Sink(*stall), journald.ProgressSink(log, progress.Connecting, progress.Done), bus, term, mw), RetrySinks: sinks(bus, nil, nil, nil, mw),
	})
	if !errors.Is(err, backup.ErrAlreadyStandby) {
		metricsDone(mw, err)
	}
	switch {
	case errors.Is(err, backup.ErrAlreadyStandby):
		log.Info("already a standby: nothing to do", "pgdata", in.DataDir)
		return exitOK
	case errors.Is(err, context.Canceled):
		bus.Completed(false, "stopped")
		log.Info("stopped; the instance resumes at the next start", "by", context.Cause(ctx).Error(), "pgdata", in.DataDir)
		if errors.Is(context.Cause(ctx), errBusCancel) {
			return exitBusCancel
		}
		return exitCancelled
	case err != nil:
		bus.Completed(false, err.Error())
		attempt := 0
		if p, perr := in.Pending(); perr == nil {
			attempt = p.Attempts // the failed attempt, as basebackup.signal records it
		}
		log.Error("backup failed: "+err.Error(), "error", err, "kind", backup.KindOf(err).String(), "attempt", attempt, "pgdata", in.DataDir)
		return exitCode(err)
	}
	bus.Completed(true, fmt.Sprintf("standby ready (%s copied, WAL up to %s)", progress.Bytes(res.Bytes), res.End))
	log.Info("standby ready", "phase", string(progress.Done), "pgdata", in.DataDir, "start_lsn", res.Start.String(), "end_lsn", res.End.String(),
		"files", res.Files, "bytes", res.Bytes, "written", res.Written, "unchanged", res.Unchanged)
	return exitOK
}

// copyMemoryLimit is the Go runtime's soft memory limit while copying
// (issue 13: peak RSS ≤ 32 MiB on every shape).
const copyMemoryLimit = 20 << 20

// tuneCopy sets the process-wide state one copy wants and returns what
// restores it (backup.Options.Tune); compression is "" for none.
func tuneCopy(compression string) (restore func()) {
	// Modes follow the primary's data_directory_mode (0700/0600 or
	// 0750/0640, always given explicitly) whatever umask the worker
	// inherited: the unit's UMask=0077 would drop group access.
	oldMask := syscall.Umask(0o027)
	// Uncompressed, the data path is one goroutine receiving and one mostly
	// waiting on the disk: more Ps only spin looking for work, CPU a primary
	// on the same host could use (2 cores: 7 % faster, 17 % less CPU). A
	// decompression stage wants its own core. GOMAXPROCS set by hand wins;
	// SetDefaultGOMAXPROCS keeps the cgroup-aware updates for later retries.
	procs := compression == "" && os.Getenv("GOMAXPROCS") == ""
	if procs {
		runtime.GOMAXPROCS(1)
	}
	// The default GC lets the heap reach twice what is live; with 60,000
	// files (~8.5 MB live while the manifest is checked) that is most of the
	// peak RSS. A soft limit makes the GC run sooner only near it; it never
	// fails an allocation. GOMEMLIMIT set by hand wins.
	limit := os.Getenv("GOMEMLIMIT") == ""
	oldLimit := int64(-1)
	if limit {
		oldLimit = debug.SetMemoryLimit(copyMemoryLimit)
	}
	return func() {
		if limit {
			debug.SetMemoryLimit(oldLimit)
		}
		if procs {
			runtime.SetDefaultGOMAXPROCS()
		}
		syscall.Umask(oldMask)
	}
}

// sinks are the non-nil ones (term is nil off a terminal, mw without a
// metrics directory: typed nils, so each is checked as its own type).
func sinks(n, j, bus progress.Sink, term *progress.Terminal, mw *metrics.Writer) []progress.Sink {
	var ks []progress.Sink
	for _, k := range []progress.Sink{n, j, bus} {
		if k != nil {
			ks = append(ks, k)
		}
	}
	if term != nil {
		ks = append(ks, term)
	}
	if mw != nil {
		ks = append(ks, mw)
	}
	return ks
}

// exitBusCancel is run's exit after Cancel() on D-Bus: a stop, which the
// unit neither restarts (RestartPreventExitStatus=) nor lets postgres
// follow (its ExecStopPost= note).
const exitBusCancel = 80

// errBusCancel is the cancellation cause of Cancel(); a context.Canceled
// to errors.Is, as a signal's is.
var errBusCancel error = busCancel{}

type busCancel struct{}

func (busCancel) Error() string        { return "Cancel() on D-Bus" }
func (busCancel) Is(target error) bool { return target == context.Canceled }

// instanceArg resolves the one INSTANCE argument, or --pgdata.
func instanceArg(fs *flag.FlagSet, pgdata, confFile string, forInit bool) (*instance.Instance, error) {
	switch {
	case pgdata != "" && fs.NArg() > 0:
		return nil, errors.New("give INSTANCE or --pgdata, not both")
	case pgdata != "":
		return instance.New(pgdata, confFile)
	case fs.NArg() != 1:
		return nil, errors.New("want exactly one INSTANCE (or --pgdata DIR)")
	}
	in, err := instance.Resolve(fs.Arg(0), forInit)
	if err == nil && !forInit && in.Debian == nil {
		err = typoedCluster(fs.Arg(0), in.DataDir)
	}
	return in, err
}

// typoedCluster: a name like a Debian cluster's (15-nope) that is none and
// whose reading as an escaped path names no directory either is a typo;
// say that rather than "/15/nope does not exist".
func typoedCluster(name, path string) error {
	ver, cluster, ok := strings.Cut(name, "-")
	if _, err := strconv.Atoi(ver); !ok || err != nil || cluster == "" || strings.HasPrefix(name, "/") {
		return nil
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return fmt.Errorf("no Debian cluster %s (%s) and not a path (no directory %s)", name, filepath.Join(instance.ConfRoot(), ver, cluster), path)
}
