package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pg-standby/pg-standby/internal/metrics"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// nodeExporter is Debian's prometheus-node-exporter with only the textfile
// collector, on a loopback port, run as its package's user. Its textfile
// directory is root's; the worker writes into its own directory, linked
// from there (docs/metrics.md, the recommended layout).
type nodeExporter struct {
	dir, url  string
	workerDir string // the worker's metrics directory, postgres'
}

// link makes root's link to an instance's metrics file.
func (ne *nodeExporter) link(t *testing.T, instance string) {
	t.Helper()
	name := metrics.FileName(instance) + ".prom"
	if err := os.Symlink(filepath.Join(ne.workerDir, name), filepath.Join(ne.dir, name)); err != nil {
		t.Fatal(err)
	}
}

func startNodeExporter(t *testing.T) *nodeExporter {
	t.Helper()
	bin, err := exec.LookPath("prometheus-node-exporter")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("prometheus-node-exporter is not installed (scripts/install-deps.sh)")
		}
		t.Skip("prometheus-node-exporter is not installed (scripts/install-deps.sh)")
	}
	dir, err := os.MkdirTemp("", "pg-standby-textfile-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	workerDir := filepath.Join(dir, "worker")
	if err := os.Mkdir(workerDir, 0o755); err != nil {
		t.Fatal(err)
	}
	testpg.Chown(t, workerDir) // the worker's, as docs/metrics.md says
	addr := "127.0.0.1:" + freePort(t)
	cmd := exec.Command(bin, "--web.listen-address="+addr, "--collector.disable-defaults",
		"--collector.textfile", "--collector.textfile.directory="+dir)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if u, err := user.Lookup("prometheus"); err == nil && os.Geteuid() == 0 {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("node_exporter:\n%s", out.String())
		}
	})
	ne := &nodeExporter{dir: dir, url: "http://" + addr + "/metrics", workerDir: workerDir}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, _, err := ne.scrape(); err == nil {
			return ne
		} else if time.Now().After(deadline) {
			t.Fatalf("node_exporter on %s: %v\n%s", addr, err, out.String())
		}
	}
}

// sampleLine is one sample of the text format, without a timestamp.
var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? ([-+]?[0-9.eE+-]+|NaN|[+-]Inf)$`)

// scrape fetches the metrics and checks every line strictly; it returns
// the pgstandby_ and node_textfile_ samples by "name{labels}", and their text.
func (ne *nodeExporter) scrape() (map[string]float64, string, error) {
	resp, err := http.Get(ne.url)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		return nil, "", fmt.Errorf("scrape: %v %s", err, resp.Status)
	}
	samples := map[string]float64{}
	var ours strings.Builder
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# HELP ") || strings.HasPrefix(line, "# TYPE ") {
			if strings.Contains(line, " pgstandby_") {
				ours.WriteString(line + "\n")
			}
			continue
		}
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			return nil, "", fmt.Errorf("not a sample line: %q", line)
		}
		if strings.HasPrefix(m[1], "pgstandby_") || strings.HasPrefix(m[1], "node_textfile_") {
			v, err := strconv.ParseFloat(m[3], 64)
			if err != nil {
				return nil, "", fmt.Errorf("%q: %v", line, err)
			}
			samples[m[1]+m[2]] = v
			if strings.HasPrefix(m[1], "pgstandby_") {
				ours.WriteString(line + "\n")
			}
		}
	}
	return samples, ours.String(), sc.Err()
}

// startWait runs pg-standby wait as root, as Ansible would, with env.
func startWait(t *testing.T, env []string, args ...string) *worker {
	t.Helper()
	w := &worker{cmd: exec.Command(binary, append([]string{"wait"}, args...)...)}
	w.cmd.Env = append(os.Environ(), env...)
	w.cmd.Stdout, w.cmd.Stderr = &w.output, &w.output
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if w.cmd.ProcessState == nil {
			w.cmd.Process.Kill()
			w.cmd.Wait()
		}
	})
	return w
}

func runWait(t *testing.T, args ...string) (int, string) {
	t.Helper()
	w := startWait(t, nil, args...)
	code := w.wait(t)
	return code, w.output.String()
}

func addSetting(t *testing.T, dir, line string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(line + "\n"); err != nil {
		t.Fatal(err)
	}
}

// TestWaitAndMetrics: a real backup observed by node_exporter's textfile
// collector (scraped mid-copy and after) and by pg-standby wait: started
// before the worker, ready at its end; a timeout mid-copy and before the
// standby streams; streaming once it does; a failure for good.
func TestWaitAndMetrics(t *testing.T) {
	waiting(t)
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		waiting(t)
		testpg.Require(t)
		ne := startNodeExporter(t)
		p := testpg.Start(t, testpg.Options{Auth: "scram-sha-256"})
		p.Pgbench(t, "-i", "-s", "3", "-q")
		dir := initInstance(t, p, "--max-rate", "4096")
		addSetting(t, dir, "pg_standby.metrics_dir = '"+ne.workerDir+"'")
		inst := `{pg_instance="` + dir + `"}`

		// Live progress from the bus, when the worker publishes there.
		b := startBus(t)
		ready := startWait(t, []string{b.Env()}, "--pgdata", dir, "--timeout", "3m")
		time.Sleep(2 * time.Second)
		if ready.cmd.ProcessState != nil {
			t.Fatalf("wait before the worker started ended: %s", ready.output.String())
		}
		wk := startWorker(t, []string{b.Env()}, "run", "--pgdata", dir)
		ne.link(t, dir)

		var mid map[string]float64
		var text string
		for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(500 * time.Millisecond) {
			s, txt, err := ne.scrape()
			if err != nil {
				t.Fatal(err)
			}
			if s[`pgstandby_backup_phase{pg_instance="`+dir+`",phase="copying"}`] == 1 && s["pgstandby_backup_copied_bytes"+inst] > 0 {
				mid, text = s, txt
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no copying in the metrics; last scrape:\n%s\nworker:\n%s", txt, wk.output.String())
			}
		}
		t.Logf("scrape mid-copy:\n%s", text)
		checkFresh(t, mid, inst, text)
		if mid["node_textfile_scrape_error"] != 0 || mid["pgstandby_backup_estimated_bytes"+inst] < 40<<20 ||
			mid["pgstandby_backup_attempts_total"+inst] != 1 || mid["pgstandby_backup_start_timestamp_seconds"+inst] < float64(time.Now().Add(-time.Minute).Unix()) {
			t.Errorf("mid-copy metrics wrong:\n%s", text)
		}
		if r, ok := mid["pgstandby_backup_reused_bytes"+inst]; !ok || r != 0 {
			t.Errorf("mid-copy metrics: reused bytes %v (present %v), want 0 for a first attempt:\n%s", r, ok, text)
		}
		if strings.Contains(text, p.Password) || strings.Contains(text, "host=") {
			t.Errorf("a secret in the metrics:\n%s", text)
		}
		fi, err := os.Lstat(mustGlob(t, ne.workerDir))
		if err != nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("metrics file: %v %v, want mode 0644", fi, err)
		}

		code, out := runWait(t, "--pgdata", dir, "--timeout", "2s")
		t.Logf("wait --timeout 2s mid-copy: exit %d: %s", code, out)
		if code != exitTimeout || !strings.Contains(out, "timed out after 2s: "+dir+": running") {
			t.Errorf("wait --timeout 2s mid-copy: exit %d, want %d: %s", code, exitTimeout, out)
		}
		if code := wk.wait(t); code != 0 {
			t.Fatalf("run: %d\n%s", code, wk.output.String())
		}
		code = ready.wait(t)
		t.Logf("wait (for ready) started before the worker: exit %d: %s", code, ready.output.String())
		if code != exitOK || !strings.Contains(ready.output.String(), dir+": running, attempt 1: copying ") ||
			!strings.Contains(ready.output.String(), dir+": copied but not starting: postgres is not running") {
			t.Errorf("wait for ready: exit %d, want 0", code)
		}
		after, text, err := ne.scrape()
		t.Logf("scrape after the backup:\n%s", text)
		if err != nil || after["node_textfile_scrape_error"] != 0 || after[`pgstandby_backup_phase{pg_instance="`+dir+`",phase="done"}`] != 1 ||
			after["pgstandby_backup_last_success_timestamp_seconds"+inst] == 0 {
			t.Errorf("metrics after the backup wrong (%v):\n%s", err, text)
		}

		code, out = runWait(t, "--pgdata", dir, "--for", "streaming", "--timeout", "3s")
		t.Logf("wait --for streaming, postgres not started: exit %d: %s", code, out)
		if code != exitTimeout {
			t.Errorf("wait --for streaming before postgres: exit %d, want %d", code, exitTimeout)
		}
		sb := testpg.StartStandby(t, dir)
		code, out = runWait(t, "--pgdata", dir, "--for", "streaming", "--timeout", "90s")
		t.Logf("wait --for streaming: exit %d: %s", code, out)
		if code != exitOK || !strings.Contains(out, dir+": complete standby, streaming from 127.0.0.1:") {
			t.Errorf("wait --for streaming: exit %d, want 0: %s", code, out)
		}
		// The worker started on a finished standby writes its health.
		if code, out := runWorker(t, "run", "--pgdata", dir); code != 0 {
			t.Fatalf("run on the standby: %d\n%s", code, out)
		}
		h, text, _ := ne.scrape()
		t.Logf("scrape of the finished standby:\n%s", text)
		if h["pgstandby_standby_streaming"+inst] != 1 || h[`pgstandby_standby_state{pg_instance="`+dir+`",state="standby"}`] != 1 {
			t.Errorf("health metrics wrong:\n%s", text)
		}
		checkFresh(t, h, inst, text)

		// The standby stops: the file still says streaming, and its age
		// says how old that is; pg-standby metrics (the timer's command)
		// makes it true again, starting nothing.
		sb.Stop(t)
		if code, out := runAsRoot(t, "metrics", "--pgdata", dir); code != exitRefused {
			t.Errorf("metrics as root: exit %d, want %d: %s", code, exitRefused, out)
		}
		stale, _, _ := ne.scrape()
		var mtime float64
		for k, v := range stale {
			if strings.HasPrefix(k, "node_textfile_mtime_seconds{") && strings.Contains(k, metrics.FileName(dir)+".prom") {
				mtime = v
			}
		}
		mfi, _ := os.Stat(mustGlob(t, ne.workerDir))
		t.Logf("after the standby stopped, before a refresh: streaming %v; last update %.1f s ago; node_textfile_mtime_seconds %.1f s ago, the file's own mtime %.1f s ago",
			stale["pgstandby_standby_streaming"+inst], float64(time.Now().UnixMilli())/1000-stale["pgstandby_metrics_last_update_timestamp_seconds"+inst],
			float64(time.Now().UnixMilli())/1000-mtime, time.Since(mfi.ModTime()).Seconds())
		time.Sleep(1100 * time.Millisecond) // a new timestamp, to the millisecond
		if code, out := runWorker(t, "metrics", "--pgdata", dir); code != 0 || out != "" {
			t.Fatalf("metrics on the stopped standby: exit %d: %s", code, out)
		}
		r, text, _ := ne.scrape()
		t.Logf("scrape after pg-standby metrics on the stopped standby:\n%s", text)
		if r["pgstandby_standby_streaming"+inst] != 0 || r["pgstandby_standby_postmaster_running"+inst] != 0 ||
			r[`pgstandby_standby_state{pg_instance="`+dir+`",state="not-running"}`] != 1 ||
			r["pgstandby_metrics_last_update_timestamp_seconds"+inst] <= stale["pgstandby_metrics_last_update_timestamp_seconds"+inst] ||
			r[`pgstandby_backup_phase{pg_instance="`+dir+`",phase="done"}`] != 1 {
			t.Errorf("refreshed metrics of the stopped standby wrong:\n%s", text)
		}
		checkFresh(t, r, inst, text)
		if _, err := os.Stat(filepath.Join(dir, "postmaster.pid")); err == nil {
			t.Error("pg-standby metrics started postgres")
		}

		// A wrong password: the worker fails for good (78), wait says so.
		wrong := filepath.Join(testpg.TempDir(t), "wrong")
		if code, out := runWorker(t, "init", "--pgdata", wrong, "--primary-conninfo", p.ConnString()+" password=wrong", "--port", "1"); code != 0 {
			t.Fatalf("init: %d\n%s", code, out)
		}
		addSetting(t, wrong, "pg_standby.metrics_dir = '"+ne.workerDir+"'")
		failed := startWait(t, nil, "--pgdata", wrong, "--timeout", "2m")
		if code, out := runWorker(t, "run", "--pgdata", wrong, "--retries", "0"); code != exitConfig {
			t.Fatalf("run with a wrong password: %d, want %d\n%s", code, exitConfig, out)
		}
		ne.link(t, wrong)
		start := time.Now()
		code = failed.wait(t)
		t.Logf("wait on a failed backup: exit %d after %s: %s", code, time.Since(start).Round(time.Second), failed.output.String())
		if code != exitFailedState || !strings.Contains(failed.output.String(), "gave up: "+wrong+": backup not started: attempt 1 failed: ") {
			t.Errorf("wait on a failed backup: exit %d, want %d", code, exitFailedState)
		}
		// Root's directory holds root's links only: the worker wrote in its own.
		entries, _ := os.ReadDir(ne.dir)
		for _, e := range entries {
			if e.Name() != "worker" && e.Type() != os.ModeSymlink {
				t.Errorf("%s in node_exporter's directory is not root's link", e.Name())
			}
		}
		// A pending backup's file is its worker's: metrics leaves it.
		before, _ := os.ReadFile(filepath.Join(ne.workerDir, metrics.FileName(wrong)+".prom"))
		if code, out := runWorker(t, "metrics", "--pgdata", wrong); code != 0 || !strings.Contains(out, "not a finished standby; its file stays as its worker last wrote it") {
			t.Errorf("metrics on a failed backup: exit %d: %s", code, out)
		}
		if after, _ := os.ReadFile(filepath.Join(ne.workerDir, metrics.FileName(wrong)+".prom")); string(after) != string(before) || len(before) == 0 {
			t.Errorf("metrics rewrote a pending backup's file:\n%s\nwas:\n%s", after, before)
		}
		f, text, _ := ne.scrape()
		if f[`pgstandby_backup_last_failure_info{class="config",pg_instance="`+wrong+`"}`] != 1 ||
			f[`pgstandby_backup_phase{pg_instance="`+wrong+`",phase="failed"}`] != 1 || f["node_textfile_scrape_error"] != 0 {
			t.Errorf("metrics of the failed backup wrong:\n%s", text)
		}
	})
}

// checkFresh: the file's own timestamp gauge is the time of its last
// write, within the last minute.
func checkFresh(t *testing.T, s map[string]float64, inst, text string) {
	t.Helper()
	ts := s["pgstandby_metrics_last_update_timestamp_seconds"+inst]
	if age := float64(time.Now().UnixMilli())/1000 - ts; age < 0 || age > 60 {
		t.Errorf("pgstandby_metrics_last_update_timestamp_seconds %v: %.1f s old, want the last write's time:\n%s", ts, age, text)
	}
}

// mustGlob is the one metrics file in dir.
func mustGlob(t *testing.T, dir string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.prom"))
	if len(m) != 1 {
		t.Fatalf("metrics files %q, want one", m)
	}
	return m[0]
}

// TestWaitTerminal: on a terminal, wait redraws one live line in place
// (\r…\x1b[K) while a real, rate-limited backup copies, clears it, and ends
// with the verdict on a line of its own.
func TestWaitTerminal(t *testing.T) {
	waiting(t)
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		waiting(t)
		testpg.Require(t)
		p := testpg.Start(t, testpg.Options{})
		p.Pgbench(t, "-i", "-s", "2", "-q")
		dir := initInstance(t, p, "--max-rate", "8192")
		m, s := openPTY(t)
		// Wide enough for the long test path: the line is not cut here.
		if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 300}); err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		read := make(chan struct{})
		go func() {
			defer close(read)
			buf := make([]byte, 4096)
			for {
				n, err := m.Read(buf)
				out.Write(buf[:n])
				if err != nil {
					return
				}
			}
		}()
		b := startBus(t)
		w := &worker{cmd: exec.Command(binary, "wait", "--pgdata", dir, "--timeout", "3m")}
		w.cmd.Env = append(os.Environ(), b.Env())
		w.cmd.Stdout, w.cmd.Stderr = s, s
		if err := w.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if w.cmd.ProcessState == nil {
				w.cmd.Process.Kill()
				w.cmd.Wait()
			}
		})
		wk := startWorker(t, []string{b.Env()}, "run", "--pgdata", dir)
		if code := wk.wait(t); code != 0 {
			t.Fatalf("run: %d\n%s", code, wk.output.String())
		}
		code := w.wait(t)
		s.Close()
		m.SetReadDeadline(time.Now().Add(2 * time.Second))
		<-read
		got := out.String()
		if code != exitOK {
			t.Fatalf("wait on a terminal: exit %d\n%q", code, got)
		}
		redraws := regexp.MustCompile(`\r`+regexp.QuoteMeta(dir)+`: running, attempt 1: copying [0-9.]+ [KMG]?i?B of [0-9.]+ [KMG]iB \(\d+%\)[^\r\n]*\x1b\[K`).FindAllString(got, -1)
		if len(redraws) < 2 {
			t.Fatalf("want the live line redrawn with \\r…\\x1b[K at least twice:\n%q", got)
		}
		t.Logf("%d redraws, e.g. %q", len(redraws), redraws[len(redraws)/2])
		final := regexp.MustCompile(`\r\x1b\[K` + regexp.QuoteMeta(dir) + `: copied but not starting: postgres is not running[^\r\n]*\r\n$`)
		if !final.MatchString(got) {
			t.Errorf("want the live line cleared and the verdict last (%s); got the end\n%q", final, got[max(0, len(got)-400):])
		}
		if strings.Count(got, "\n") != 1 {
			t.Errorf("want one line ended (the verdict), the rest redrawn in place:\n%q", got)
		}
	})
}

// TestWaitLatency measures how long wait takes to see a change: from a
// real worker's exit (the copy complete) to wait's exit, five times (each
// a re-seed of the same instance), and from a real standby's first
// streaming to wait --for streaming's exit. The figures are logged; the
// bound asserted is loose (a loaded 2-core machine): 1 s, where a poll
// of 1 s alone averages 0.5 s. It runs a binary built without -race: a
// race build takes about a second to start here, and each look as root
// starts one (the health probe as the data directory's owner).
func TestWaitLatency(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		plain := filepath.Join(testpg.TempDir(t), "pg-standby")
		if out, err := exec.Command("go", "build", "-o", plain, ".").CombinedOutput(); err != nil {
			t.Fatalf("build pg-standby: %v\n%s", err, out)
		}
		os.Chmod(filepath.Dir(plain), 0o755)
		defer func(b string) { binary = b }(binary)
		binary = plain // no test runs beside this one
		p := testpg.Start(t, testpg.Options{Auth: "scram-sha-256"})
		p.Pgbench(t, "-i", "-s", "1", "-q")
		dir := initInstance(t, p)
		var ready []time.Duration
		for i := range 5 {
			if i > 0 { // re-seed in place, as README says
				if err := os.WriteFile(filepath.Join(dir, "basebackup.signal"), nil, 0o600); err != nil {
					t.Fatal(err)
				}
				testpg.Chown(t, dir)
			}
			w := startWait(t, nil, "--pgdata", dir, "--timeout", "2m")
			time.Sleep(300 * time.Millisecond) // wait is past its first look
			wk := startWorker(t, nil, "run", "--pgdata", dir)
			if code := wk.wait(t); code != 0 {
				t.Fatalf("run %d: %d\n%s", i, code, wk.output.String())
			}
			exited := time.Now()
			if code := w.wait(t); code != exitOK {
				t.Fatalf("wait %d: exit %d: %s", i, code, w.output.String())
			}
			ready = append(ready, time.Since(exited))
		}
		slices.Sort(ready)
		t.Logf("worker exit -> wait exit (for ready), sorted: %v; median %v", ready, ready[len(ready)/2])
		if med := ready[len(ready)/2]; med > time.Second {
			t.Errorf("median latency of wait after the worker's exit %v, want < 1s", med)
		}

		w := startWait(t, nil, "--pgdata", dir, "--for", "streaming", "--timeout", "2m")
		time.Sleep(300 * time.Millisecond)
		s := testpg.StartStandby(t, dir)
		var streaming time.Time
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if out, err := s.SQLErr("SELECT status FROM pg_stat_wal_receiver"); err == nil && strings.TrimSpace(out) == "streaming" {
				streaming = time.Now()
				break
			}
		}
		if streaming.IsZero() {
			t.Fatal("the standby does not stream")
		}
		if code := w.wait(t); code != exitOK {
			t.Fatalf("wait --for streaming: exit %d: %s", code, w.output.String())
		}
		t.Logf("first seen streaming -> wait --for streaming exit: %v", time.Since(streaming))
	})
}
