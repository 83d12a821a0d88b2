// Command pg-standby-bench measures pg-standby against pg_basebackup and a
// plain copy on one local primary, alternating the contenders run by run so
// a drifting machine affects them alike. It is what `make bench` runs; see
// docs/bench.md for the scenarios (BENCH_SCENARIO: contenders, retry,
// resync, all) and how to read the figures.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pg-standby/pg-standby/internal/testpg"
)

func main() {
	cfg := config{}
	flag.IntVar(&cfg.scale, "scale", envInt("BENCH_SCALE", 140), "pgbench scale of the main database (140 is about 2.1 GiB)")
	flag.IntVar(&cfg.runs, "runs", envInt("BENCH_RUNS", 5), "counted runs of each contender (5: shared machines are noisy)")
	flag.StringVar(&cfg.binary, "pg-standby", "bin/pg-standby", "the pg-standby binary to measure")
	bindir := flag.String("bindir", "", "the host's PostgreSQL 15 programs (default $PG_BINDIR, else /usr/lib/postgresql/15/bin)")
	pgMajor := flag.Int("pg", envInt("BENCH_PG", 15), "the primary's PostgreSQL major: 15 (the host's), 17 or 18 (from testpg's rootfs)")
	scenarioList := flag.String("scenario", envStr("BENCH_SCENARIO", "contenders"), "contenders, retry, resync, a comma list, or all")
	flag.IntVar(&cfg.wireRuns, "wire-runs", envInt("BENCH_WIRE_RUNS", 3), "repetitions of the retry and resync scenarios")
	flag.StringVar(&cfg.logDir, "log-dir", envStr("BENCH_LOG_DIR", ""), "keep every retry/resync worker's output here (one file per run)")
	flag.IntVar(&cfg.quietTables, "quiet-tables", envInt("BENCH_QUIET_TABLES", 30), "tables of the quiet shape")
	flag.IntVar(&cfg.quietMB, "quiet-mb", envInt("BENCH_QUIET_MB", 16), "MB of each quiet table")
	flag.StringVar(&cfg.out, "json", "bench-results.json", "where to write the results")
	flag.BoolVar(&cfg.skipScaling, "skip-scaling", false, "skip the 1x/4x memory scenario")
	flag.IntVar(&cfg.tables, "tables", envInt("BENCH_TABLES", 20000), "small tables of the manyfiles shape (3 files each)")
	flag.IntVar(&cfg.mixedScale, "mixed-scale", envInt("BENCH_MIXED_SCALE", 100), "pgbench scale of the mixed shape")
	flag.IntVar(&cfg.mixedTables, "mixed-tables", envInt("BENCH_MIXED_TABLES", 10000), "small tables of the mixed shape")
	shapeList := flag.String("shape", envStr("BENCH_SHAPE", ""), "pgbench, manyfiles, mixed, quiet, a comma list, all (the first three) or all+quiet (default: all for contenders, quiet for retry and resync)")
	flag.BoolVar(&cfg.freshFS, "fresh-fs", envStr("BENCH_FRESH_FS", "1") != "0", "a new loop-mounted ext4 for every run (needs root)")
	flag.BoolVar(&cfg.loopDirectIO, "loop-direct-io", envStr("BENCH_LOOP_DIRECT_IO", "1") != "0", "the fresh filesystem's loop device uses direct I/O on its image")
	flag.StringVar(&cfg.fsDir, "fs-dir", envStr("BENCH_FS_DIR", ""), "where the fresh filesystem's image lives (default: beside the primary; /dev/shm gives a disk faster than the stream, so A/R shows the copy's own overhead)")
	flag.Parse()
	var err error
	if cfg.scenarios, err = scenarios(*scenarioList); err != nil {
		fmt.Fprintln(os.Stderr, "pg-standby-bench:", err)
		os.Exit(2)
	}
	contendersShapes, wireShapes := *shapeList, *shapeList
	if *shapeList == "" {
		contendersShapes, wireShapes = "all", "quiet"
	}
	if cfg.shapes, err = shapes(contendersShapes, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "pg-standby-bench:", err)
		os.Exit(2)
	}
	if cfg.wireShapes, err = shapes(wireShapes, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "pg-standby-bench:", err)
		os.Exit(2)
	}
	if *bindir != "" {
		os.Setenv("PG_BINDIR", *bindir) // testpg's host version reads it
	}
	if cfg.pg, err = lookupPG(*pgMajor); err != nil {
		fmt.Fprintln(os.Stderr, "pg-standby-bench:", err)
		os.Exit(2)
	}
	if cfg.freshFS && os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "pg-standby-bench: a fresh filesystem per run (loop-mounted ext4) needs root; run as root or set BENCH_FRESH_FS=0")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := runScenarios(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pg-standby-bench:", err)
		os.Exit(1)
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(cfg.out, append(b, '\n'), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "pg-standby-bench:", err)
		os.Exit(1)
	}
	fmt.Printf("\nresults written to %s\n", cfg.out)
}

type config struct {
	scale, runs                     int
	tables, mixedScale, mixedTables int
	quietTables, quietMB            int
	wireRuns                        int
	binary, out                     string
	skipScaling, freshFS            bool
	loopDirectIO                    bool
	fsDir, logDir                   string
	pg                              testpg.Version
	scenarios                       []string
	shapes                          []shape // of the contenders scenario
	wireShapes                      []shape // of the retry and resync scenarios
}

func envInt(name string, def int) int {
	var n int
	if _, err := fmt.Sscan(os.Getenv(name), &n); err == nil && n > 0 {
		return n
	}
	return def
}

func envStr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

var start = time.Now()

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, a...))
}
