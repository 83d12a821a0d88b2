// Command pg-standby-bench measures pg-standby against pg_basebackup and a
// plain copy on one local primary, alternating the contenders run by run so
// a drifting machine affects them alike. It is what `make bench` runs; see
// README.md ("Benchmark") for the scenarios and how to read the table.
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
)

func main() {
	cfg := config{}
	flag.IntVar(&cfg.scale, "scale", envInt("BENCH_SCALE", 140), "pgbench scale of the main database (140 is about 2.1 GiB)")
	flag.IntVar(&cfg.runs, "runs", envInt("BENCH_RUNS", 5), "counted runs of each contender (5: shared machines are noisy)")
	flag.StringVar(&cfg.binary, "pg-standby", "bin/pg-standby", "the pg-standby binary to measure")
	flag.StringVar(&cfg.bindir, "bindir", envStr("PG_BINDIR", "/usr/lib/postgresql/15/bin"), "PostgreSQL programs")
	flag.StringVar(&cfg.out, "json", "bench-results.json", "where to write the results")
	flag.BoolVar(&cfg.skipScaling, "skip-scaling", false, "skip the 1x/4x memory scenario")
	flag.IntVar(&cfg.tables, "tables", envInt("BENCH_TABLES", 20000), "small tables of the manyfiles shape (3 files each)")
	flag.IntVar(&cfg.mixedScale, "mixed-scale", envInt("BENCH_MIXED_SCALE", 100), "pgbench scale of the mixed shape")
	flag.IntVar(&cfg.mixedTables, "mixed-tables", envInt("BENCH_MIXED_TABLES", 10000), "small tables of the mixed shape")
	shapeList := flag.String("shape", envStr("BENCH_SHAPE", "all"), "pgbench, manyfiles, mixed, a comma list, or all")
	flag.BoolVar(&cfg.freshFS, "fresh-fs", envStr("BENCH_FRESH_FS", "1") != "0", "a new loop-mounted ext4 for every run (needs root)")
	flag.BoolVar(&cfg.loopDirectIO, "loop-direct-io", envStr("BENCH_LOOP_DIRECT_IO", "1") != "0", "the fresh filesystem's loop device uses direct I/O on its image")
	flag.StringVar(&cfg.fsDir, "fs-dir", envStr("BENCH_FS_DIR", ""), "where the fresh filesystem's image lives (default: beside the primary; /dev/shm gives a disk faster than the stream, so A/R shows the copy's own overhead)")
	flag.Parse()
	var err error
	if cfg.shapes, err = shapes(*shapeList, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "pg-standby-bench:", err)
		os.Exit(2)
	}
	if cfg.freshFS && os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "pg-standby-bench: a fresh filesystem per run (loop-mounted ext4) needs root; run as root or set BENCH_FRESH_FS=0")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, cfg)
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
	binary, bindir, out             string
	skipScaling, freshFS            bool
	loopDirectIO                    bool
	fsDir                           string
	shapes                          []shape
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
