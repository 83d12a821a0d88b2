package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// shape is one kind of database the contenders copy.
type shape struct {
	name   string
	scale  int     // pgbench scale; 0 for none
	tables int     // small tables (a heap, its TOAST table and index: 3 files each)
	maxAB  float64 // the A/B wall target (issue 13)
}

// shapes parses BENCH_SHAPE: pgbench, manyfiles, mixed, a comma list, or all.
func shapes(list string, cfg config) ([]shape, error) {
	known := map[string]shape{
		"pgbench":   {name: "pgbench", scale: cfg.scale, maxAB: 0.60},
		"manyfiles": {name: "manyfiles", tables: cfg.tables, maxAB: 0.80},
		"mixed":     {name: "mixed", scale: cfg.mixedScale, tables: cfg.mixedTables, maxAB: 0.70},
	}
	if list == "" || list == "all" {
		list = "pgbench,manyfiles,mixed"
	}
	var out []shape
	for _, n := range strings.Split(list, ",") {
		sh, ok := known[strings.TrimSpace(n)]
		if !ok {
			return nil, fmt.Errorf("BENCH_SHAPE: unknown shape %q (pgbench, manyfiles, mixed or all)", n)
		}
		out = append(out, sh)
	}
	return out, nil
}

// loadShape fills the primary: pgbench tables, then small tables in
// batches of 1000 per transaction, then a checkpoint.
func (p *primary) loadShape(ctx context.Context, sh shape) error {
	if sh.scale > 0 {
		if err := p.pg(ctx, "pgbench", "-h", p.dir, "-p", strconv.Itoa(p.port), "-i", "-q", "-s", strconv.Itoa(sh.scale), "postgres"); err != nil {
			return err
		}
	}
	for from := 0; from < sh.tables; from += 1000 {
		to := min(from+1000, sh.tables) - 1
		q := fmt.Sprintf(`DO $$ BEGIN FOR i IN %d..%d LOOP
EXECUTE format('CREATE TABLE small_%%s (id int, v text); INSERT INTO small_%%s SELECT g, md5(g::text) FROM generate_series(1, 20) g', i, i);
END LOOP; END $$`, from, to)
		if err := p.sql(ctx, q); err != nil {
			return err
		}
	}
	return p.sql(ctx, "CHECKPOINT")
}

// contenders are the commands of every round; each writes into dir, a
// fresh directory (on a fresh filesystem) made for that run.
func (p *primary) contenders(bin, notifyPath string, all bool, backupBytes *int64) []contender {
	instance := func(dir string) error { return p.prepareInstance(dir) }
	none := func(string) error { return nil }
	mkdir := func(dir string) error {
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		return os.Chown(dir, p.uid, p.gid)
	}
	pgs := func(extra ...string) func(string) []string {
		return func(dir string) []string {
			return append([]string{bin, "run", "--pgdata", dir, "--checkpoint", "fast"}, extra...)
		}
	}
	basebackup := filepath.Join(p.cfg.bindir, "pg_basebackup")
	port := strconv.Itoa(p.port)
	cs := []contender{
		{name: "A pg-standby", dir: "x", setup: instance, argv: pgs()},
		{name: "B pg_basebackup", dir: "x", setup: none, argv: func(dir string) []string {
			return []string{basebackup, "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-D", dir, "-Fp", "-Xstream", "-c", "fast"}
		}},
		{name: "C cp -a + sync", dir: "x", setup: none, argv: func(dir string) []string {
			return []string{"sh", "-c", "cp -a " + p.data + " " + dir + " && sync"}
		}},
		// What the primary can send at all over this transport: the same
		// BASE_BACKUP (checksum verification, manifest checksums) read and
		// thrown away. No copy can be faster than this.
		{name: "R receive only", argv: func(string) []string {
			return []string{"sh", "-c", basebackup + " -h 127.0.0.1 -p " + port + " -U postgres -D - -Ft -X none -c fast >/dev/null 2>&1"}
		}},
		// What this filesystem can take at all: the backup's bytes as one
		// file, 1 MiB direct writes, then fsync. When D is slower than R the
		// disk, not the copy, bounds A (A/max(R,D) is then the overhead).
		{name: "D disk floor (dd)", dir: "x", setup: mkdir, argv: func(dir string) []string {
			n := max(1, *backupBytes>>20)
			return []string{"dd", "if=/dev/zero", "of=" + filepath.Join(dir, "f"), "bs=1M", "count=" + strconv.FormatInt(n, 10), "oflag=direct", "conv=fsync", "status=none"}
		}},
	}
	if !all {
		return cs
	}
	// A+ next to A, so the pair shares the machine's state: the plumbing's
	// cost is far below this machine's run-to-run noise.
	aplus := contender{name: "A+ pg-standby, sd_notify on", dir: "x", setup: instance, argv: pgs(), env: []string{"NOTIFY_SOCKET=" + notifyPath}}
	// Server-side lz4, the option for slow links, measured on loopback.
	az := contender{name: "Az pg-standby --compress lz4", dir: "x", setup: instance, argv: pgs("--compress", "lz4")}
	return append([]contender{cs[0], aplus}, append(cs[1:], az)...)
}

func countFiles(dir string) int {
	n := 0
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n++
		}
		return nil
	})
	return n
}
