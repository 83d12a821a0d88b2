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
	// quiet tables of quietMB each (heaps only, fillfactor 90, no index),
	// vacuumed after the load: the quiet primary of issue 15's targets.
	quiet, quietMB int
}

// shapes parses BENCH_SHAPE: pgbench, manyfiles, mixed, a comma list, or all.
func shapes(list string, cfg config) ([]shape, error) {
	known := map[string]shape{
		"pgbench":   {name: "pgbench", scale: cfg.scale, maxAB: 0.60},
		"manyfiles": {name: "manyfiles", tables: cfg.tables, maxAB: 0.80},
		"mixed":     {name: "mixed", scale: cfg.mixedScale, tables: cfg.mixedTables, maxAB: 0.70},
		"quiet":     {name: "quiet", quiet: cfg.quietTables, quietMB: cfg.quietMB, maxAB: 0.60},
	}
	switch list {
	case "", "all":
		list = "pgbench,manyfiles,mixed"
	case "all+quiet":
		list = "pgbench,manyfiles,mixed,quiet"
	}
	var out []shape
	for _, n := range strings.Split(list, ",") {
		sh, ok := known[strings.TrimSpace(n)]
		if !ok {
			return nil, fmt.Errorf("BENCH_SHAPE: unknown shape %q (pgbench, manyfiles, mixed, quiet, all or all+quiet)", n)
		}
		out = append(out, sh)
	}
	return out, nil
}

// loadShape fills the primary: pgbench tables, then small tables in
// batches of 1000 per transaction, then a checkpoint.
func (p *primary) loadShape(ctx context.Context, sh shape) error {
	if sh.scale > 0 {
		if err := p.pg(ctx, "pgbench", "-h", p.dir, "-p", strconv.Itoa(p.port), "-U", "postgres", "-i", "-q", "-s", strconv.Itoa(sh.scale), "postgres"); err != nil {
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
	if sh.quiet > 0 {
		// 8 kB pages at fillfactor 90 hold about 100 rows of 64 bytes
		// of text each: rows = MB * 128 pages * 68 rows, a little under.
		rows := sh.quietMB * 128 * 68
		for i := range sh.quiet {
			q := fmt.Sprintf("CREATE TABLE quiet_%d (id int, pad text) WITH (fillfactor = 90, autovacuum_enabled = off); "+
				"INSERT INTO quiet_%d SELECT g, repeat(md5(g::text), 2) FROM generate_series(1, %d) g", i, i, rows)
			if err := p.sql(ctx, q); err != nil {
				return err
			}
		}
		// Hint bits and the visibility map set now: with data checksums
		// the first read after the load would log every page.
		if err := p.sql(ctx, "VACUUM"); err != nil {
			return err
		}
	}
	return p.sql(ctx, "CHECKPOINT")
}

// changeBlocks updates one live row in every n-th heap block of the public
// tables, counting blocks over all tables in oid order (so small tables
// change one in n too), keeping every value: on the quiet shape's
// fillfactor 90 the new version stays on its page (a HOT update), so about
// 1/n of the heap blocks change, the same ones each time. It returns the
// rows updated and the heap blocks in all.
func (p *primary) changeBlocks(ctx context.Context, n int) (changed, total int64, err error) {
	q := fmt.Sprintf(`DO $$ DECLARE r record; seen bigint := 0; done bigint := 0; blocks bigint; col text; k bigint; BEGIN
FOR r IN SELECT c.oid::regclass AS rel FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
	WHERE s.nspname = 'public' AND c.relkind = 'r' ORDER BY c.oid LOOP
  blocks := pg_relation_size(r.rel) / 8192;
  SELECT quote_ident(attname) INTO col FROM pg_attribute WHERE attrelid = r.rel AND attnum = 1;
  FOR b IN (%[1]d - seen %% %[1]d) %% %[1]d .. blocks - 1 BY %[1]d LOOP
    EXECUTE format('UPDATE %%s SET %%s = %%s WHERE ctid = (SELECT ctid FROM %%s WHERE ctid >= $1 AND ctid < $2 LIMIT 1)', r.rel, col, col, r.rel)
      USING format('(%%s,0)', b)::tid, format('(%%s,0)', b + 1)::tid;
    GET DIAGNOSTICS k = ROW_COUNT;
    done := done + k;
  END LOOP;
  seen := seen + blocks;
END LOOP;
RAISE NOTICE 'changed %% of %% heap blocks', done, seen;
END $$`, n)
	out, err := p.sqlOut(ctx, q)
	if err != nil {
		return 0, 0, err
	}
	i := strings.Index(out, "changed ")
	if i < 0 {
		return 0, 0, fmt.Errorf("change blocks: no count in %q", out)
	}
	if _, err := fmt.Sscanf(out[i:], "changed %d of %d heap blocks", &changed, &total); err != nil {
		return 0, 0, fmt.Errorf("change blocks: no count in %q: %w", out, err)
	}
	return changed, total, nil
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
	port := strconv.Itoa(p.port)
	basebackup := func(args ...string) []string {
		argv, _, err := p.pgArgv(context.Background(), "pg_basebackup", append([]string{"-h", "127.0.0.1", "-p", port, "-U", "postgres"}, args...)...)
		if err != nil {
			return []string{"sh", "-c", "echo " + strconv.Quote(err.Error()) + " >&2; exit 1"}
		}
		return argv
	}
	_, pgCred, _ := p.pgArgv(context.Background(), "pg_basebackup")
	cs := []contender{
		{name: "A pg-standby", dir: "x", setup: instance, argv: pgs(), verify: true},
		{name: "B pg_basebackup", dir: "x", setup: none, pgCmd: true, cred: pgCred, argv: func(dir string) []string {
			return basebackup("-D", dir, "-Fp", "-Xstream", "-c", "fast")
		}},
		{name: "C cp -a + sync", dir: "x", setup: none, argv: func(dir string) []string {
			return []string{"sh", "-c", "cp -a " + p.data + " " + dir + " && sync"}
		}},
		// What the primary can send at all over this transport: the same
		// BASE_BACKUP (checksum verification, manifest checksums) read and
		// thrown away. No copy can be faster than this.
		{name: "R receive only", pgCmd: true, cred: pgCred, argv: func(string) []string {
			return append([]string{"sh", "-c", `"$@" >/dev/null 2>&1`, "sh"}, basebackup("-D", "-", "-Ft", "-X", "none", "-c", "fast")...)
		}},
		// What this filesystem can take at all: the backup's bytes as two
		// files written side by side (two writes in flight, as A's queue
		// keeps), 1 MiB direct writes, then fsync. When D is slower than R
		// the disk, not the copy, bounds A (A/max(R,D) is then the overhead).
		{name: "D disk floor (dd)", dir: "x", setup: mkdir, argv: func(dir string) []string {
			n := max(2, *backupBytes>>20)
			dd := func(f string, count int64) string {
				return fmt.Sprintf("dd if=/dev/zero of=%s bs=1M count=%d oflag=direct conv=fsync status=none", filepath.Join(dir, f), count)
			}
			return []string{"sh", "-c", dd("f1", n/2) + " & p=$!; " + dd("f2", n-n/2) + " || exit 1; wait $p"}
		}},
	}
	if !all {
		return cs
	}
	// A+ next to A, so the pair shares the machine's state: the plumbing's
	// cost is far below this machine's run-to-run noise.
	aplus := contender{name: "A+ pg-standby, sd_notify on", dir: "x", setup: instance, argv: pgs(), env: []string{"NOTIFY_SOCKET=" + notifyPath}, verify: true}
	// Server-side lz4, the option for slow links, measured on loopback.
	az := contender{name: "Az pg-standby --compress lz4", dir: "x", setup: instance, argv: pgs("--compress", "lz4"), verify: true}
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
