package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/progress"
)

// mappings collects repeated --tablespace-mapping OLD=NEW flags.
type mappings map[string]string

func (m mappings) String() string { return fmt.Sprint(map[string]string(m)) }
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
	fs.StringVar(&opt.DataDir, "pgdata", os.Getenv("PGDATA"), "data directory of the instance (default $PGDATA)")
	fs.StringVar(&opt.ConfFile, "config-file", "", "the instance's postgresql.conf (default DIR/postgresql.conf)")
	fs.StringVar(&opt.Checkpoint, "checkpoint", "fast", "checkpoint mode on the primary: fast or spread")
	fs.Int64Var(&opt.MaxRateKB, "max-rate", 0, "limit the primary's send rate in kB/s (32..1048576; 0 unlimited)")
	fs.StringVar(&opt.ManifestChecksums, "manifest-checksums", "CRC32C", "manifest checksum algorithm: CRC32C, SHA224, SHA256, SHA384, SHA512 or NONE")
	fs.Var(mappings(opt.TablespaceMapping), "tablespace-mapping", "relocate the tablespace at OLD on the primary to NEW here (repeatable)")
	fs.BoolVar(&opt.CreateSlot, "create-slot", false, "create primary_slot_name on the primary if it is missing")
	verbose := fs.Bool("verbose", false, "log debug detail")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	opt.Log = log
	opt.Progress = progress.NewTracker()
	opt.Progress.Attempt.Store(1)

	repCtx, stopReport := context.WithCancel(ctx)
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		progress.Report(repCtx, opt.Progress, defaultLogInterval, &logSink{log: log})
	}()
	res, err := backup.Run(ctx, opt)
	stopReport()
	<-reported
	switch {
	case errors.Is(err, backup.ErrAlreadyStandby):
		log.Info("already a standby: nothing to do", "pgdata", opt.DataDir)
		return exitOK
	case err != nil:
		log.Error("backup failed", "error", err, "kind", backup.KindOf(err).String())
		return exitCode(err)
	}
	log.Info("standby ready", "pgdata", opt.DataDir, "start_lsn", res.Start.String(), "end_lsn", res.End.String(),
		"files", res.Files, "bytes", res.Bytes, "written", res.Written, "unchanged", res.Unchanged)
	return exitOK
}
