package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/health"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/journald"
	"github.com/pg-standby/pg-standby/internal/metrics"
	"github.com/pg-standby/pg-standby/internal/pgconf"
)

// metricsWriter is the instance's metrics file writer, nil when no metrics
// directory is set or found. It reads pg_standby.metrics_dir from the
// instance's own configuration only, as the backup does: once an attempt
// has written, other files in the data directory may be the primary's.
//
// As root it writes none: the setting is in files the postgres user may
// edit, and root must not create files where postgres says.
func metricsWriter(in *instance.Instance, name string, log *slog.Logger) *metrics.Writer {
	if os.Geteuid() == 0 {
		return nil
	}
	p, err := in.Pending()
	var conf *pgconf.Config
	switch {
	case err != nil && !os.IsNotExist(err):
		return nil // the backup says why
	case err == nil && p.Recorded:
		conf, err = pgconf.LoadOnly(in.ConfFile, in.DataDir, func(abs string) bool {
			rel, rerr := filepath.Rel(in.DataDir, abs)
			return rerr != nil || rel == ".." || strings.HasPrefix(rel, "../") || slices.Contains(p.Keep, rel)
		})
	default:
		conf, err = pgconf.Load(in.ConfFile, in.DataDir)
	}
	if err != nil {
		return nil // the backup reports an unreadable configuration
	}
	var set instance.Settings
	if err := set.FillMetricsDir(conf); err != nil {
		log.Warn("no metrics: " + err.Error())
		return nil
	}
	dir := metrics.Dir(set.MetricsDir)
	if dir == "" {
		return nil
	}
	return metrics.New(metrics.Config{Dir: dir, File: metrics.FileName(name), Instance: name, Log: log}, p.LastFailure)
}

// metricsDone writes how the run ended.
func metricsDone(w *metrics.Writer, err error) {
	if w == nil {
		return
	}
	switch {
	case err == nil:
		w.Completed(true, "", time.Now())
	case errors.Is(err, context.Canceled):
		w.Completed(false, "stopped", time.Now())
	default:
		w.Completed(false, failureClass(err), time.Now())
	}
}

// failureClass is the stable label value of a failure's kind.
func failureClass(err error) string {
	switch backup.KindOf(err) {
	case backup.Config:
		return "config"
	case backup.Refused:
		return "refused"
	case backup.Corrupt:
		return "corrupt"
	case backup.Protocol:
		return "protocol"
	default:
		return "transient"
	}
}

// metricsStandby writes a finished standby's health: the worker runs as
// the data directory's owner, so it probes directly. The standby was
// finished when standby.signal was written.
func metricsStandby(ctx context.Context, w *metrics.Writer, in *instance.Instance) {
	if w == nil {
		return
	}
	var finished time.Time
	if fi, err := os.Lstat(filepath.Join(in.DataDir, instance.StandbySignal)); err == nil {
		finished = fi.ModTime()
	}
	r := health.Probe(ctx, in.DataDir, serverLog(in))
	w.Standby(finished, metrics.Health{State: healthState(&r), Report: r})
}

// metricsCmd refreshes the metrics file of a finished standby: the health
// probe and write the worker makes when started on one, without starting
// anything (pg-standby-metrics@.timer runs it; pg-standby@ would start
// postgres by its OnSuccess=). A pending backup's file is its worker's:
// left as the worker last wrote it.
func metricsCmd(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("metrics", flag.ContinueOnError)
	pgdata := fs.String("pgdata", "", "data directory of an instance given directly (instead of INSTANCE)")
	if err := parseInterspersed(fs, args); err != nil {
		return parseExit(err)
	}
	in, err := instanceArg(fs, *pgdata, "", false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pg-standby metrics:", err)
		return exitUsage
	}
	if os.Geteuid() == 0 {
		fmt.Fprintln(os.Stderr, "pg-standby metrics: refusing to run as root (it writes where the instance's configuration says): run it as the data directory's owner")
		return exitRefused
	}
	name := in.Name
	if name == "" {
		name = in.DataDir
	}
	log := slog.New(journald.NewHandlerTo(os.Stderr, name, slog.LevelInfo))
	if pid := instance.LockHolder(in.DataDir); pid != 0 {
		fmt.Fprintf(os.Stderr, "pg-standby metrics: %s: a worker runs (pid %d) and keeps the file up to date\n", name, pid)
		return exitOK
	}
	if st, err := in.Inspect(); err != nil || st != instance.Standby {
		fmt.Fprintf(os.Stderr, "pg-standby metrics: %s: not a finished standby; its file stays as its worker last wrote it\n", name)
		return exitOK
	}
	w := metricsWriter(in, name, log)
	if w == nil {
		fmt.Fprintf(os.Stderr, "pg-standby metrics: %s: no metrics directory (pg_standby.metrics_dir, or a writable %s: docs/metrics.md)\n", name, metrics.DebianDir)
		return exitConfig
	}
	metricsStandby(ctx, w, in)
	if err := w.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "pg-standby metrics: %s: %v\n", name, err)
		return exitTransient
	}
	return exitOK
}
