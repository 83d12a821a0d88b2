package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pg-standby/pg-standby/internal/faultproxy"
)

// runScenarios runs the scenarios BENCH_SCENARIO asks for. The contenders
// scenario keeps its JSON shape (one entry per shape); the retry and
// resync scenarios add "retry/SHAPE" and "resync/SHAPE".
func runScenarios(ctx context.Context, cfg config) (map[string]any, error) {
	all := map[string]any{}
	for _, sc := range cfg.scenarios {
		switch sc {
		case "contenders":
			res, err := run(ctx, cfg)
			if err != nil {
				return nil, err
			}
			for k, v := range res {
				all[k] = v
			}
		}
	}
	// retry and resync share a primary per shape (loading it is the slow part).
	var wires []string
	for _, sc := range cfg.scenarios {
		if sc == "retry" || sc == "resync" {
			wires = append(wires, sc)
		}
	}
	if len(wires) == 0 {
		return all, nil
	}
	for _, sh := range cfg.wireShapes {
		rs, err := wireScenarios(ctx, cfg, wires, sh)
		if err != nil {
			return nil, fmt.Errorf("shape %s: %w", sh.name, err)
		}
		for _, r := range rs {
			all[r.Scenario+"/"+sh.name] = r
		}
	}
	return all, nil
}

// wireResult is one retry or resync scenario on one shape: bytes the
// primary sent (counted by a proxy in front of it, server to client, every
// connection of the worker), wall times, and their ratios per repetition.
type wireResult struct {
	Scenario      string           `json:"scenario"`
	Shape         string           `json:"shape"`
	When          time.Time        `json:"when"`
	Machine       string           `json:"machine"`
	PG            int              `json:"pg_major"`
	ServerVersion string           `json:"server_version"`
	Commit        string           `json:"bench_commit,omitempty"`
	Binary        string           `json:"pg_standby_version"` // the measured binary's --version
	FreshFS       bool             `json:"fresh_filesystem_per_run"`
	FSImageDir    string           `json:"fs_image_dir,omitempty"`
	DatabaseBytes int64            `json:"database_bytes"`
	LoadBefore    string           `json:"loadavg_before"`
	LoadAfter     string           `json:"loadavg_after"`
	Runs          []wireRun        `json:"runs"`
	CutRuns       []wireRun        `json:"link_cut_runs,omitempty"`
	Summary       map[string]stats `json:"summary"`
	Targets       []target         `json:"targets"`
	Notes         []string         `json:"notes,omitempty"`
}

// wireRun is one repetition. Base is the clean (retry) or full (resync)
// run; Cut is the killed attempt, or the link cut, at CutAtBytes; After is
// the rerun (retry), the bytes after the cut in the same process (link
// cut), or resync + run (resync).
type wireRun struct {
	BaseBytes   int64   `json:"base_bytes"`
	BaseWallS   float64 `json:"base_wall_s"`
	BaseCPUS    float64 `json:"base_cpu_s"`
	BaseRSS     float64 `json:"base_peak_rss_mib"`
	CutAtBytes  int64   `json:"cut_at_bytes,omitempty"`
	CutWallS    float64 `json:"cut_wall_s,omitempty"`
	AfterBytes  int64   `json:"after_bytes"`
	AfterWallS  float64 `json:"after_wall_s"`
	AfterCPUS   float64 `json:"after_cpu_s"` // the run after the interruption (retry, resync): user + system
	AfterRSS    float64 `json:"after_peak_rss_mib"`
	ResyncWallS float64 `json:"resync_command_wall_s,omitempty"`
	Reused      int64   `json:"bytes_reused_logged"`
	Received    int64   `json:"bytes_received_logged"`
	ByChanged   bool    `json:"by_changed_blocks"`
	Changed     int64   `json:"changed_heap_blocks,omitempty"`
	HeapBlocks  int64   `json:"heap_blocks,omitempty"`
	BytesShare  float64 `json:"bytes_share"` // AfterBytes / BaseBytes
	WallRatio   float64 `json:"wall_ratio"`  // retry: (CutWallS + AfterWallS) / BaseWallS; resync: (ResyncWallS + AfterWallS) / BaseWallS
	Verified    bool    `json:"pg_verifybackup"`
	// resync only: pg_basebackup's own full and INCREMENTAL backups of the
	// same primary at the same points, through the same proxy (the floor
	// the server sets for any client of INCREMENTAL).
	BBFullWallS  float64 `json:"pg_basebackup_full_wall_s,omitempty"`
	BBFullBytes  int64   `json:"pg_basebackup_full_bytes,omitempty"`
	BBIncWallS   float64 `json:"pg_basebackup_incremental_wall_s,omitempty"`
	BBIncBytes   int64   `json:"pg_basebackup_incremental_bytes,omitempty"`
	BBWallRatio  float64 `json:"pg_basebackup_wall_ratio,omitempty"`  // BBIncWallS / BBFullWallS
	BBBytesShare float64 `json:"pg_basebackup_bytes_share,omitempty"` // BBIncBytes / BBFullBytes
	// The same increment as tar files, not synced: what the server takes to
	// send it with its checkpoint, the least any client can take.
	BBIncTarWallS float64 `json:"pg_basebackup_incremental_tar_nosync_wall_s,omitempty"`
	// resync only: a full run after changing the same blocks again, and
	// (ResyncWallS + AfterWallS) / FullSameWallS.
	FullSameWallS float64 `json:"full_same_point_wall_s,omitempty"`
	SameRatio     float64 `json:"wall_ratio_same_point,omitempty"`
	// The bytes to the client on each connection of the base run and of
	// the run after the interruption, in the order the proxy accepted
	// them (the archive's, the WAL stream's, and any short ones).
	BaseLinks  []int64 `json:"base_link_bytes"`
	AfterLinks []int64 `json:"after_link_bytes"`
}

var reusedRe = regexp.MustCompile(`bytes_received=(\d+) bytes_reused=(\d+)`)

// wire is a primary behind a counting proxy, and a fresh filesystem.
type wire struct {
	cfg   config
	p     *primary
	proxy *faultproxy.Proxy
	ffs   *freshFS
	out   string // where instances go
	bin   string
	links []int64 // of the last worker call
	cpu   float64 // user + system seconds of the last worker call
	rss   float64 // its peak RSS, MiB

	scenario, shape string // for the kept logs' names
	logs            int
}

func (w *wire) conninfo() string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres sslmode=disable", w.proxy.Port)
}

// renew gives a new empty filesystem (when fresh filesystems are on) and a
// minimal instance in it.
func (w *wire) renew(ctx context.Context) (string, error) {
	dir := filepath.Join(w.out, "x")
	if w.ffs != nil {
		if err := w.ffs.renew(ctx); err != nil {
			return "", err
		}
	}
	cleanDir(dir)
	return dir, w.p.prepareInstanceConn(dir, w.conninfo())
}

// worker runs pg-standby with args as the primary's user and returns its
// wall time, the bytes the proxy forwarded to clients meanwhile, and its
// output; w.links is then the bytes of each connection it opened.
func (w *wire) worker(ctx context.Context, args ...string) (float64, int64, string, error) {
	before := w.proxy.Total(faultproxy.ToClient)
	first := len(w.proxy.Counts())
	s, err := runAs(ctx, w.p.cred, nil, append([]string{w.bin}, args...)...)
	w.keepLog(args[0], s.Output)
	w.cpu, w.rss = s.CPU, s.PeakRSS
	w.links = nil
	for _, c := range w.proxy.Counts()[first:] {
		w.links = append(w.links, c.ToClient)
	}
	return s.Wall, w.proxy.Total(faultproxy.ToClient) - before, s.Output, err
}

// keepLog writes a worker's output to BENCH_LOG_DIR, numbered in order.
func (w *wire) keepLog(what, out string) {
	if w.cfg.logDir == "" {
		return
	}
	w.logs++
	name := fmt.Sprintf("%s-%s-%03d-%s.log", w.scenario, w.shape, w.logs, what)
	if err := os.WriteFile(filepath.Join(w.cfg.logDir, name), []byte(out), 0o644); err != nil {
		logf("keep the worker's log: %v", err)
	}
}

func (w *wire) verify(ctx context.Context, dir string) error { return w.p.verify(ctx, dir) }

// wireScenarios runs the scenarios (retry, resync) on one primary of shape sh.
func wireScenarios(ctx context.Context, cfg config, scenarios []string, sh shape) ([]*wireResult, error) {
	p, err := newPrimary(cfg)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	p.conf = "autovacuum = off\n" // nothing changes blocks behind the scenario's back
	if p.v.Major >= 17 {
		p.conf += "summarize_wal = on\n"
	}
	w := &wire{cfg: cfg, p: p, out: p.dir, bin: filepath.Join(p.dir, "pg-standby"), shape: sh.name}
	if err := copyFile(cfg.binary, w.bin); err != nil {
		return nil, fmt.Errorf("copy %s (make build first): %w", cfg.binary, err)
	}
	logf("%s, shape %s: PostgreSQL %d primary in %s on port %d", strings.Join(scenarios, ", "), sh.name, p.v.Major, p.dir, p.port)
	if err := p.start(ctx); err != nil {
		return nil, err
	}
	if err := p.loadShape(ctx, sh); err != nil {
		return nil, err
	}
	if w.proxy, err = faultproxy.Start(net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port))); err != nil {
		return nil, err
	}
	defer w.proxy.Close()
	dbBytes := size(p.data)
	version, _ := p.sqlOut(ctx, "SHOW server_version")
	imgDir := ""
	if cfg.freshFS {
		imgDir = p.dir
		if cfg.fsDir != "" {
			imgDir = cfg.fsDir
		}
		w.ffs = newFreshFS(imgDir, p.dir, max(4<<30, 3*dbBytes), p.uid, p.gid, cfg.loopDirectIO)
		defer w.ffs.close()
		w.out = w.ffs.mnt
	}
	var rs []*wireResult
	for _, scenario := range scenarios {
		r := &wireResult{Scenario: scenario, Shape: sh.name, When: time.Now().UTC(), PG: p.v.Major,
			Machine: fmt.Sprintf("%d cores, %s/%s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH), ServerVersion: strings.TrimSpace(version),
			FreshFS: cfg.freshFS, FSImageDir: imgDir, DatabaseBytes: dbBytes, Commit: gitCommit(), Binary: binaryVersion(w.bin), LoadBefore: loadavg()}
		w.scenario = scenario
		if err := w.run(ctx, r); err != nil {
			return nil, fmt.Errorf("scenario %s: %w", scenario, err)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// run runs r.Scenario's repetitions and fills r.
func (w *wire) run(ctx context.Context, r *wireResult) error {
	for i := range w.cfg.wireRuns {
		if r.Scenario == "retry" {
			x, err := w.retryOnce(ctx)
			if err != nil {
				return fmt.Errorf("repetition %d: %w", i+1, err)
			}
			r.Runs = append(r.Runs, x)
			c, err := w.cutOnce(ctx, x)
			if err != nil {
				return fmt.Errorf("repetition %d, link cut: %w", i+1, err)
			}
			r.CutRuns = append(r.CutRuns, c)
		} else {
			x, err := w.resyncOnce(ctx)
			if err != nil {
				return fmt.Errorf("repetition %d: %w", i+1, err)
			}
			r.Runs = append(r.Runs, x)
		}
	}
	cleanDir(filepath.Join(w.out, "x"))
	r.LoadAfter = loadavg()
	r.judge()
	r.print()
	return nil
}

// baseRun is the run a scenario compares with: a new instance copied whole,
// verified; its wall, bytes and links go into x.
func (w *wire) baseRun(ctx context.Context, x *wireRun, what string) (string, error) {
	dir, err := w.renew(ctx)
	if err != nil {
		return "", err
	}
	if x.BaseWallS, x.BaseBytes, _, err = w.worker(ctx, "run", "--pgdata", dir, "--checkpoint", "fast"); err != nil {
		return "", err
	}
	x.BaseLinks, x.BaseCPUS, x.BaseRSS = w.links, w.cpu, w.rss
	if err := w.verify(ctx, dir); err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	logf("%s %.2f s, %d bytes on the wire %v", what, x.BaseWallS, x.BaseBytes, x.BaseLinks)
	return dir, nil
}

// retryOnce: a clean run, then a run SIGKILLed once the proxy forwarded
// half the clean run's bytes, then a rerun on the same directory.
func (w *wire) retryOnce(ctx context.Context) (wireRun, error) {
	var x wireRun
	dir, err := w.baseRun(ctx, &x, "retry: clean run")
	if err != nil {
		return x, err
	}
	if dir, err = w.renew(ctx); err != nil {
		return x, err
	}
	x.CutAtBytes = x.BaseBytes / 2
	cmd := exec.CommandContext(ctx, w.bin, "run", "--pgdata", dir, "--checkpoint", "fast")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if w.p.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: w.p.cred}
	}
	var proc atomic.Pointer[os.Process]
	var killed atomic.Bool
	w.proxy.Watch(faultproxy.ToClient, x.CutAtBytes, func() {
		// Nothing more goes to the worker: the kill lands at this byte.
		w.proxy.CutAll(faultproxy.Stall)
		if pr := proc.Load(); pr != nil {
			killed.Store(true)
			pr.Kill()
		}
	})
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return x, err
	}
	proc.Store(cmd.Process)
	werr := cmd.Wait()
	x.CutWallS = time.Since(t0).Seconds()
	w.keepLog("run-killed", buf.String())
	w.proxy.Watch(faultproxy.ToClient, 0, nil)
	if !killed.Load() {
		return x, fmt.Errorf("the attempt to kill ended before the proxy forwarded %d bytes (%v)\n%s", x.CutAtBytes, werr, tail(buf.String()))
	}
	var out string
	if x.AfterWallS, x.AfterBytes, out, err = w.worker(ctx, "run", "--pgdata", dir, "--checkpoint", "fast"); err != nil {
		return x, fmt.Errorf("rerun after the kill: %w", err)
	}
	x.AfterLinks, x.AfterCPUS, x.AfterRSS = w.links, w.cpu, w.rss
	x.parseLog(out)
	if err := w.verify(ctx, dir); err != nil {
		return x, fmt.Errorf("rerun after the kill: %w", err)
	}
	x.Verified = true
	x.BytesShare = float64(x.AfterBytes) / float64(x.BaseBytes)
	x.WallRatio = (x.CutWallS + x.AfterWallS) / x.BaseWallS
	logf("retry: killed at %d bytes after %.2f s; rerun %.2f s, %d bytes %v (%.3f of clean), by changed blocks: %v (reused %d); total/clean %.3f",
		x.CutAtBytes, x.CutWallS, x.AfterWallS, x.AfterBytes, x.AfterLinks, x.BytesShare, x.ByChanged, x.Reused, x.WallRatio)
	return x, nil
}

// cutOnce: one run whose links the proxy drops at half the clean run's
// bytes; the same process retries (after the worker's in-process backoff).
// The clean run is the retry repetition's.
func (w *wire) cutOnce(ctx context.Context, clean wireRun) (wireRun, error) {
	x := wireRun{BaseBytes: clean.BaseBytes, BaseWallS: clean.BaseWallS, CutAtBytes: clean.BaseBytes / 2}
	dir, err := w.renew(ctx)
	if err != nil {
		return x, err
	}
	var cut atomic.Int64
	t0 := time.Now()
	w.proxy.Watch(faultproxy.ToClient, x.CutAtBytes, func() {
		w.proxy.CutAll(faultproxy.Drop)
		cut.Store(int64(time.Since(t0)))
	})
	wall, n, out, err := w.worker(ctx, "run", "--pgdata", dir, "--checkpoint", "fast")
	w.proxy.Watch(faultproxy.ToClient, 0, nil)
	if err != nil {
		return x, err
	}
	x.AfterLinks = w.links
	if cut.Load() == 0 {
		return x, fmt.Errorf("the run ended before the proxy forwarded %d bytes", x.CutAtBytes)
	}
	x.parseLog(out)
	if err := w.verify(ctx, dir); err != nil {
		return x, fmt.Errorf("run with a link cut: %w", err)
	}
	x.Verified = true
	x.CutWallS = time.Duration(cut.Load()).Seconds()
	x.AfterWallS = wall - x.CutWallS
	x.AfterBytes = n - x.CutAtBytes
	x.BytesShare = float64(x.AfterBytes) / float64(x.BaseBytes)
	x.WallRatio = wall / x.BaseWallS
	logf("retry, link cut: cut at %d bytes after %.2f s; the same process finished %.2f s later with %d more bytes %v (%.3f of clean), by changed blocks: %v (reused %d)",
		x.CutAtBytes, x.CutWallS, x.AfterWallS, x.AfterBytes, x.AfterLinks, x.BytesShare, x.ByChanged, x.Reused)
	return x, nil
}

// resyncOnce: a full run, the standby started and stopped (resync wants a
// cleanly stopped standby), one row in every 20th heap block updated on the
// primary, pg-standby resync, then a run.
func (w *wire) resyncOnce(ctx context.Context) (wireRun, error) {
	var x wireRun
	dir, err := w.baseRun(ctx, &x, "resync: full run")
	if err != nil {
		return x, err
	}
	bbFull := filepath.Join(w.out, "pg_basebackup-full")
	if x.BBFullWallS, x.BBFullBytes, err = w.basebackup(ctx, "-D", bbFull); err != nil {
		return x, err
	}
	// Only its manifest is kept, beside the primary: left on the instance's
	// filesystem, the full backup would cost the resync its one syncfs.
	bbManifest := filepath.Join(w.p.dir, "pg_basebackup-full.manifest")
	if err := copyFile(filepath.Join(bbFull, "backup_manifest"), bbManifest); err != nil {
		return x, err
	}
	cleanDir(bbFull)
	if err := w.startStopStandby(ctx, dir); err != nil {
		return x, err
	}
	if x.Changed, x.HeapBlocks, err = w.p.changeBlocks(ctx, 20); err != nil {
		return x, err
	}
	var n1, n2 int64
	var out string
	if x.ResyncWallS, n1, out, err = w.worker(ctx, "resync", "--pgdata", dir); err != nil {
		return x, fmt.Errorf("pg-standby resync: %w", err)
	}
	resyncLinks := w.links
	if x.AfterWallS, n2, out, err = w.worker(ctx, "run", "--pgdata", dir, "--checkpoint", "fast"); err != nil {
		return x, fmt.Errorf("run after resync: %w", err)
	}
	x.AfterLinks, x.AfterCPUS, x.AfterRSS = append(resyncLinks, w.links...), w.cpu, w.rss
	x.parseLog(out)
	if err := w.verify(ctx, dir); err != nil {
		return x, fmt.Errorf("run after resync: %w", err)
	}
	x.Verified = true
	x.AfterBytes = n1 + n2
	x.BytesShare = float64(x.AfterBytes) / float64(x.BaseBytes)
	x.WallRatio = (x.ResyncWallS + x.AfterWallS) / x.BaseWallS
	if err := w.basebackupIncrementals(ctx, &x, bbManifest); err != nil {
		return x, err
	}
	if err := w.fullAtSamePoint(ctx, &x); err != nil {
		return x, err
	}
	logf("resync: pg_basebackup full %.2f s, %d bytes; --incremental after the same changes again %.2f s, %d bytes: %.3f of its full's wall, %.3f of its bytes; as tar, unsynced: %.2f s",
		x.BBFullWallS, x.BBFullBytes, x.BBIncWallS, x.BBIncBytes, x.BBWallRatio, x.BBBytesShare, x.BBIncTarWallS)
	logf("resync: %d of %d heap blocks changed; resync %.2f s + run %.2f s (cpu %.2f s), %d bytes %v (%.3f of full), by changed blocks: %v (reused %d); (resync+run)/full %.3f; full after the same changes %.2f s: %.3f",
		x.Changed, x.HeapBlocks, x.ResyncWallS, x.AfterWallS, x.AfterCPUS, x.AfterBytes, x.AfterLinks, x.BytesShare, x.ByChanged, x.Reused, x.WallRatio,
		x.FullSameWallS, x.SameRatio)
	return x, nil
}

// basebackupIncrementals takes pg_basebackup's incremental backups against
// the full one's manifest, each after the same blocks changed again, so
// that its checkpoint has as much to flush as the resync's had (which
// flushed them): a plain one, and a tar one unsynced, the server's floor.
func (w *wire) basebackupIncrementals(ctx context.Context, x *wireRun, manifest string) error {
	plain, tar := filepath.Join(w.out, "pg_basebackup-incremental"), filepath.Join(w.out, "pg_basebackup-incremental-tar")
	defer cleanDir(plain)
	defer cleanDir(tar)
	var err error
	if _, _, err = w.p.changeBlocks(ctx, 20); err != nil {
		return err
	}
	if x.BBIncWallS, x.BBIncBytes, err = w.basebackup(ctx, "-D", plain, "--incremental", manifest); err != nil {
		return err
	}
	x.BBWallRatio, x.BBBytesShare = x.BBIncWallS/x.BBFullWallS, float64(x.BBIncBytes)/float64(x.BBFullBytes)
	if _, _, err = w.p.changeBlocks(ctx, 20); err != nil {
		return err
	}
	x.BBIncTarWallS, _, err = w.basebackup(ctx, "-D", tar, "-F", "t", "--no-sync", "--incremental", manifest)
	return err
}

// fullAtSamePoint changes the same blocks again and takes a full run into
// a new instance: the re-clone a resync replaces, paying the same
// checkpoint of dirty pages as the resync did (the base run found none).
func (w *wire) fullAtSamePoint(ctx context.Context, x *wireRun) error {
	if _, _, err := w.p.changeBlocks(ctx, 20); err != nil {
		return err
	}
	dir, err := w.renew(ctx)
	if err != nil {
		return err
	}
	if x.FullSameWallS, _, _, err = w.worker(ctx, "run", "--pgdata", dir, "--checkpoint", "fast"); err != nil {
		return fmt.Errorf("full run after the same changes: %w", err)
	}
	x.SameRatio = (x.ResyncWallS + x.AfterWallS) / x.FullSameWallS
	return nil
}

// basebackup runs pg_basebackup (-c fast -X stream) through the proxy as the
// primary's user: its wall time and the bytes the proxy forwarded to it.
func (w *wire) basebackup(ctx context.Context, args ...string) (float64, int64, error) {
	argv, cred, err := w.p.pgArgv(ctx, "pg_basebackup", append([]string{"-d", w.conninfo(), "-c", "fast", "-X", "stream"}, args...)...)
	if err != nil {
		return 0, 0, err
	}
	before := w.proxy.Total(faultproxy.ToClient)
	s, err := runAs(ctx, cred, nil, argv...)
	if err != nil {
		return 0, 0, fmt.Errorf("pg_basebackup %v: %w\n%s", args, err, tail(s.Output))
	}
	return s.Wall, w.proxy.Total(faultproxy.ToClient) - before, nil
}

// startStopStandby starts postgres on dir as a standby (unix socket only,
// its own port), waits until it accepts connections, and stops it fast.
func (w *wire) startStopStandby(ctx context.Context, dir string) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	log := filepath.Join(w.p.dir, "standby.log")
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=''", port, w.p.dir)
	if err := w.p.pg(ctx, "pg_ctl", "-D", dir, "-l", log, "-o", opts, "-w", "-t", "300", "start"); err != nil {
		b, _ := os.ReadFile(log)
		return fmt.Errorf("start the standby: %w\n%s", err, tail(string(b)))
	}
	if err := w.p.pg(ctx, "pg_ctl", "-D", dir, "-m", "fast", "-w", "-t", "300", "stop"); err != nil {
		return fmt.Errorf("stop the standby: %w", err)
	}
	return nil
}

func (x *wireRun) parseLog(out string) {
	x.ByChanged = strings.Contains(out, "resuming: ")
	if m := reusedRe.FindStringSubmatch(out); m != nil {
		x.Received, _ = strconv.ParseInt(m[1], 10, 64)
		x.Reused, _ = strconv.ParseInt(m[2], 10, 64)
	}
}

func (r *wireResult) judge() {
	add := func(name string, v, limit float64) {
		r.Targets = append(r.Targets, target{Name: name, Value: v, Limit: limit, Pass: v <= limit})
	}
	r.Summary = map[string]stats{}
	get := func(runs []wireRun, f func(wireRun) float64) stats {
		var xs []float64
		for _, x := range runs {
			xs = append(xs, f(x))
		}
		return summarize(xs)
	}
	share := func(x wireRun) float64 { return x.BytesShare }
	ratio := func(x wireRun) float64 { return x.WallRatio }
	r.Summary["base_wall_s"] = get(r.Runs, func(x wireRun) float64 { return x.BaseWallS })
	r.Summary["base_mb"] = get(r.Runs, func(x wireRun) float64 { return float64(x.BaseBytes) / 1e6 })
	r.Summary["after_wall_s"] = get(r.Runs, func(x wireRun) float64 { return x.AfterWallS })
	r.Summary["after_mb"] = get(r.Runs, func(x wireRun) float64 { return float64(x.AfterBytes) / 1e6 })
	r.Summary["base_cpu_s"] = get(r.Runs, func(x wireRun) float64 { return x.BaseCPUS })
	r.Summary["base_peak_rss_mib"] = get(r.Runs, func(x wireRun) float64 { return x.BaseRSS })
	r.Summary["after_cpu_s"] = get(r.Runs, func(x wireRun) float64 { return x.AfterCPUS })
	r.Summary["after_peak_rss_mib"] = get(r.Runs, func(x wireRun) float64 { return x.AfterRSS })
	r.Summary["bytes_share"] = get(r.Runs, share)
	r.Summary["wall_ratio"] = get(r.Runs, ratio)
	for _, x := range r.Runs {
		if !x.ByChanged {
			r.Notes = append(r.Notes, "a run after the interruption did not resume by changed blocks (no \"resuming:\" in its log): it took a full backup over the directory")
			break
		}
	}
	if r.Scenario == "retry" {
		r.Summary["killed_wall_s"] = get(r.Runs, func(x wireRun) float64 { return x.CutWallS })
		r.Summary["cut_bytes_share"] = get(r.CutRuns, share)
		r.Summary["cut_wall_ratio"] = get(r.CutRuns, ratio)
		add("retry received / clean (median)", r.Summary["bytes_share"].Median, 0.55)
		add("killed + retry wall / clean (median)", r.Summary["wall_ratio"].Median, 1.2)
		return
	}
	r.Summary["resync_command_wall_s"] = get(r.Runs, func(x wireRun) float64 { return x.ResyncWallS })
	r.Summary["changed_share"] = get(r.Runs, func(x wireRun) float64 { return float64(x.Changed) / float64(max(x.HeapBlocks, 1)) })
	r.Summary["pg_basebackup_wall_ratio"] = get(r.Runs, func(x wireRun) float64 { return x.BBWallRatio })
	r.Summary["pg_basebackup_bytes_share"] = get(r.Runs, func(x wireRun) float64 { return x.BBBytesShare })
	r.Summary["pg_basebackup_incremental_wall_s"] = get(r.Runs, func(x wireRun) float64 { return x.BBIncWallS })
	r.Summary["pg_basebackup_incremental_tar_nosync_wall_s"] = get(r.Runs, func(x wireRun) float64 { return x.BBIncTarWallS })
	// The least wall_ratio any client could show: the floor over the same full run.
	r.Summary["floor_wall_ratio"] = get(r.Runs, func(x wireRun) float64 { return x.BBIncTarWallS / x.BaseWallS })
	r.Summary["full_same_point_wall_s"] = get(r.Runs, func(x wireRun) float64 { return x.FullSameWallS })
	r.Summary["wall_ratio_same_point"] = get(r.Runs, func(x wireRun) float64 { return x.SameRatio })
	add("resync received / full (median)", r.Summary["bytes_share"].Median, 0.15)
	add("resync + run wall / full (median)", r.Summary["wall_ratio"].Median, 0.3)
}

func (r *wireResult) print() {
	fmt.Printf("\npg-standby %s scenario, shape %s: PostgreSQL %s, database %.2f GiB, %s, %d repetitions, fresh filesystem per run: %v (image in %s), %s, bench commit %s\n",
		r.Scenario, r.Shape, r.ServerVersion, float64(r.DatabaseBytes)/(1<<30), r.Machine, len(r.Runs), r.FreshFS, r.FSImageDir, r.Binary, r.Commit)
	fmt.Printf("load average before: %s; after: %s\n\n", r.LoadBefore, r.LoadAfter)
	keys := []string{"base_mb", "base_wall_s", "base_cpu_s", "base_peak_rss_mib", "after_mb", "after_wall_s", "after_cpu_s", "after_peak_rss_mib", "bytes_share", "wall_ratio"}
	if r.Scenario == "retry" {
		keys = append(keys, "killed_wall_s", "cut_bytes_share", "cut_wall_ratio")
	} else {
		keys = append(keys, "resync_command_wall_s", "changed_share", "pg_basebackup_wall_ratio", "pg_basebackup_bytes_share", "full_same_point_wall_s", "wall_ratio_same_point",
			"pg_basebackup_incremental_wall_s", "pg_basebackup_incremental_tar_nosync_wall_s", "floor_wall_ratio")
	}
	width := 0
	for _, k := range keys {
		width = max(width, len(k))
	}
	for _, k := range keys {
		s := r.Summary[k]
		fmt.Printf("%-*s min %9.3f  median %9.3f  max %9.3f\n", width, k, s.Min, s.Median, s.Max)
	}
	for _, n := range r.Notes {
		fmt.Println("note:", n)
	}
	fmt.Println("\ntargets (issue 15):")
	for _, t := range r.Targets {
		mark := "PASS"
		if !t.Pass {
			mark = "MISS"
		}
		fmt.Printf("  %s %-40s %.3f (limit %.2f)\n", mark, t.Name, t.Value, t.Limit)
	}
}

// loadavg is /proc/loadavg's three load averages.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// binaryVersion is what bin --version says.
func binaryVersion(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// gitCommit is the commit of the working directory's repository, if any.
func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
