package backup_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg-standby/pg-standby/internal/backup"
	fp "github.com/pg-standby/pg-standby/internal/fakeprimary"
	"github.com/pg-standby/pg-standby/internal/faultproxy"
	"github.com/pg-standby/pg-standby/internal/oracle"
	"github.com/pg-standby/pg-standby/internal/pgconf"
	"github.com/pg-standby/pg-standby/internal/progress"
	"github.com/pg-standby/pg-standby/internal/service"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// The fault suite: each case breaks something real (the link, the primary,
// the disk, permissions) and ends with the same oracle: a clear error of the
// right kind, the primary unharmed (no walsender, no temporary slot, no
// backup in progress left behind), nothing outside the instance and its
// tablespace locations touched, and for transient faults a rerun that
// completes and passes pg_verifybackup.

// faultEnv is a primary behind a fault proxy and an instance that reaches
// the primary only through the proxy, inside a parent directory whose other
// entries must never change.
type faultEnv struct {
	p       *testpg.Server
	proxy   *faultproxy.Proxy
	parent  string // holds data, ts and outside
	data    string
	ts      string // parent of the tablespace locations
	outside string
}

func newFaultEnv(t *testing.T, p *testpg.Server, parent string) *faultEnv {
	t.Helper()
	proxy, err := faultproxy.Start(fmt.Sprintf("127.0.0.1:%d", p.Port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	if parent == "" {
		parent = newLocation(t)
	}
	e := &faultEnv{p: p, proxy: proxy, parent: parent, data: filepath.Join(parent, "standby"),
		ts: filepath.Join(parent, "ts"), outside: filepath.Join(parent, "outside")}
	for _, d := range []string{e.data, e.ts, e.outside} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(e.outside, "victim"), "must not change")
	// sslmode=disable: with "prefer" pgconn opens a second TCP connection
	// after the server declines TLS, and the proxy's numbering (0 data,
	// 1 WAL) would be off.
	conninfo := fmt.Sprintf("host=127.0.0.1 port=%d user=replicator password=%s dbname=postgres sslmode=disable connect_timeout=10", proxy.Port, p.Password)
	writeFile(t, filepath.Join(e.data, "postgresql.conf"), "primary_conninfo = "+pgconf.Quote(conninfo)+"\nhot_standby = on\n")
	writeFile(t, filepath.Join(e.data, "basebackup.signal"), "")
	return e
}

func (e *faultEnv) outsideSnapshot(t *testing.T) string {
	return snapshotExcept(t, e.parent, e.data, e.ts)
}

// checkPrimaryUnharmed waits until the primary has forgotten the failed
// attempt: no walsender, no temporary slot, no base backup in progress; and
// it still takes writes.
func checkPrimaryUnharmed(t *testing.T, p *testpg.Server) {
	t.Helper()
	p.WaitFor(t, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'", "0", 30*time.Second)
	p.WaitFor(t, "SELECT count(*) FROM pg_replication_slots WHERE temporary", "0", 10*time.Second)
	p.WaitFor(t, "SELECT count(*) FROM pg_stat_progress_basebackup", "0", 10*time.Second)
	p.SQL(t, "CREATE TABLE IF NOT EXISTS still_writable (x int); INSERT INTO still_writable VALUES (1)")
}

// checkFailed is the oracle's first half, for an attempt that failed with err.
func checkFailed(t *testing.T, e *faultEnv, err error, kind backup.Kind, message, outsideBefore string) {
	t.Helper()
	if err == nil {
		t.Fatalf("the attempt succeeded; want a %s error containing %q", kind, message)
	}
	t.Logf("error (%s): %v", backup.KindOf(err), err)
	if !strings.Contains(err.Error(), message) {
		t.Errorf("error %q does not contain %q", err, message)
	}
	if got := backup.KindOf(err); got != kind {
		t.Errorf("kind = %s, want %s", got, kind)
	}
	if after := e.outsideSnapshot(t); after != outsideBefore {
		t.Errorf("something outside the instance and its tablespaces changed:\nbefore:\n%s\nafter:\n%s", outsideBefore, after)
	}
	oracle.FailedAttempt(t, e.data)
	checkPrimaryUnharmed(t, e.p)
}

// rerun is the oracle's second half: with the fault gone, a rerun on the
// same directory completes and pg_verifybackup passes.
func rerun(t *testing.T, e *faultEnv, opt backup.Options) *backup.Result {
	t.Helper()
	e.proxy.Disarm()
	before := e.outsideSnapshot(t)
	opt.DataDir = e.data
	res, err := run(t, opt)
	if err != nil {
		t.Fatalf("rerun after the fault: %v", err)
	}
	t.Logf("rerun: %d files, %d bytes, %d written, %d unchanged", res.Files, res.Bytes, res.Written, res.Unchanged)
	verifyBackup(t, e.data)
	if after := e.outsideSnapshot(t); after != before {
		t.Errorf("the rerun changed something outside the instance:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if got := e.p.SQL(t, "SELECT count(*) FROM pg_replication_slots WHERE temporary"); got != "0" {
		t.Errorf("%s temporary slots left on the primary after the rerun", got)
	}
	return res
}

// loadedPrimary is a primary with about 30 MB of pgbench data and a
// tablespace holding another 10 MB.
func loadedPrimary(t *testing.T) (*testpg.Server, string) {
	t.Helper()
	p := testpg.Start(t, testpg.Options{})
	p.Pgbench(t, "-i", "-s", "2", "-q")
	loc := p.CreateTablespace(t, "fault_ts")
	p.SQL(t, "CREATE TABLE in_fault_ts TABLESPACE fault_ts AS SELECT g, repeat('t', 80) AS pad FROM generate_series(1, 80000) g")
	return p, loc
}

// TestFaultConnectionCut drops the link to the primary in the middle of the
// tablespace archive (PostgreSQL sends tablespaces before the base
// directory), then in the middle of the WAL stream. The tablespace location
// the first attempt half-filled must not block the rerun, and the result
// becomes a replicating standby.
func TestFaultConnectionCut(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		p, loc := loadedPrimary(t)
		e := newFaultEnv(t, p, "")
		tsLocal := filepath.Join(e.ts, "fault_ts")
		opt := backup.Options{TablespaceMapping: map[string]string{loc: tsLocal}}

		t.Run("mid-archive", func(t *testing.T) {
			before := e.outsideSnapshot(t)
			e.proxy.Arm(faultproxy.Fault{Conn: 0, Dir: faultproxy.ToClient, After: 4 << 20, Action: faultproxy.Drop})
			o := opt
			o.DataDir = e.data
			_, err := run(t, o)
			if len(e.proxy.Fired()) != 1 {
				t.Fatalf("the cut did not happen (%v)", err)
			}
			checkFailed(t, e, err, backup.Transient, "receive base backup stream", before)
			if want := fmt.Sprintf("the connection to the primary 127.0.0.1:%d was lost", e.proxy.Port); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
			entries, _ := os.ReadDir(tsLocal)
			if len(entries) == 0 {
				t.Fatalf("the cut left the tablespace location %s empty: the case did not test a half-written tablespace", tsLocal)
			}
		})
		t.Run("mid-WAL", func(t *testing.T) {
			before := e.outsideSnapshot(t)
			// Slow the archive so that the WAL link is cut while it is still
			// being copied; pgbench makes sure WAL flows.
			stop := startPgbench(t, p, time.Minute)
			defer stop()
			e.proxy.Arm(faultproxy.Fault{Conn: 1, Dir: faultproxy.ToClient, After: 256 << 10, Action: faultproxy.Drop})
			o := opt
			o.DataDir, o.MaxRateKB = e.data, 8192
			_, err := run(t, o)
			stop()
			if len(e.proxy.Fired()) != 1 {
				t.Fatalf("the cut did not happen (%v)", err)
			}
			checkFailed(t, e, err, backup.Transient, "WAL streaming failed", before)
		})
		t.Run("rerun", func(t *testing.T) {
			res := rerun(t, e, opt)
			if res.Unchanged == 0 {
				t.Errorf("the rerun found nothing of the earlier attempts unchanged")
			}
			p.SQL(t, "CREATE TABLE after_cuts AS SELECT 'replicated' AS x")
			s := testpg.StartStandby(t, e.data)
			s.WaitFor(t, "SELECT x FROM after_cuts", "replicated", time.Minute)
			if got := s.SQL(t, "SELECT count(*) FROM in_fault_ts"); got != "80000" {
				t.Errorf("in_fault_ts on the standby has %s rows, want 80000", got)
			}
		})
	})
}

// TestFaultStall black-holes the link (nothing forwarded, nothing closed):
// the stall watchdog must end the attempt, for the archive and for the WAL
// stream alone.
func TestFaultStall(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		p := testpg.Start(t, testpg.Options{})
		p.Pgbench(t, "-i", "-s", "2", "-q")
		e := newFaultEnv(t, p, "")
		const stall = 2 * time.Second
		attempt := func(t *testing.T, maxRate int64) (error, time.Duration) {
			cfg := service.Config{
				Backup: backup.Options{DataDir: e.data, Checkpoint: "fast", MaxRateKB: maxRate, Log: testLogger(t)},
				Log:    testLogger(t), Notify: nopNotifier{}, Retries: 0, Stall: stall,
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			began := time.Now()
			_, err := service.Run(ctx, cfg)
			if ctx.Err() != nil {
				t.Fatalf("the stalled attempt hung until the test's timeout: %v", err)
			}
			return err, time.Since(began)
		}
		for _, c := range []struct {
			name    string
			fault   faultproxy.Fault
			maxRate int64
			phase   progress.Phase
		}{
			{"archive", faultproxy.Fault{Conn: 0, Dir: faultproxy.ToClient, After: 4 << 20, Action: faultproxy.Stall}, 0, progress.Copying},
			// The archive completes (slowly), then the worker waits for WAL that never comes.
			{"WAL", faultproxy.Fault{Conn: 1, Dir: faultproxy.ToClient, After: 16 << 10, Action: faultproxy.Stall}, 16384, progress.WaitingWAL},
		} {
			t.Run(c.name, func(t *testing.T) {
				before := e.outsideSnapshot(t)
				stop := startPgbench(t, p, time.Minute) // WAL flows, so the WAL link has bytes to stall on
				defer stop()
				e.proxy.Arm(c.fault)
				err, took := attempt(t, c.maxRate)
				stop()
				if len(e.proxy.Fired()) != 1 {
					t.Fatalf("the stall did not happen (%v)", err)
				}
				if !errors.Is(err, service.ErrStalled) {
					t.Fatalf("stalled link: %v, want a stall error", err)
				}
				checkFailed(t, e, err, backup.Transient, "no data from the primary for 2s ("+string(c.phase)+" phase)", before)
				t.Logf("attempt ended after %s", took)
			})
		}
		rerun(t, e, backup.Options{})
	})
}

type nopNotifier struct{}

func (nopNotifier) Status(string)               {}
func (nopNotifier) Ready(string)                {}
func (nopNotifier) Stopping(string)             {}
func (nopNotifier) ExtendTimeout(time.Duration) {}

// TestFaultPrimaryRestart restarts the primary (fast, then immediate
// shutdown) in the middle of the copy.
func TestFaultPrimaryRestart(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		p := testpg.Start(t, testpg.Options{})
		p.Pgbench(t, "-i", "-s", "2", "-q")
		e := newFaultEnv(t, p, "")
		for _, mode := range []string{"fast", "immediate"} {
			t.Run(mode, func(t *testing.T) {
				before := e.outsideSnapshot(t)
				tracker := progress.NewTracker()
				errc := make(chan error, 1)
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					defer cancel()
					_, err := backup.Run(ctx, backup.Options{DataDir: e.data, Checkpoint: "fast", MaxRateKB: 8192, Progress: tracker, Log: testLogger(t)})
					errc <- err
				}()
				for tracker.Streamed.Load() < 4<<20 {
					select {
					case err := <-errc:
						t.Fatalf("backup ended before the restart: %v", err)
					case <-time.After(5 * time.Millisecond):
					}
				}
				p.Restart(t, mode)
				select {
				case err := <-errc:
					checkFailed(t, e, err, backup.Transient, "pg-standby retries, and a rerun keeps what is already written", before)
				case <-time.After(time.Minute):
					t.Fatal("the backup did not notice the restart within a minute")
				}
			})
		}
		rerun(t, e, backup.Options{})
	})
}

// TestFaultDiskFull: a file system (a small tmpfs) too small for the
// primary's estimate is refused before any write; one that holds the
// estimate but fills up during the copy (the primary writes 50 MB of WAL
// meanwhile) fails as transient; after freeing space (growing it) the rerun
// completes.
func TestFaultDiskFull(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		testpg.RequireRoot(t, "disk full: mounting a small tmpfs needs root; run the tests as root (as CI does) to cover this case")
		p := testpg.Start(t, testpg.Options{})
		p.Pgbench(t, "-i", "-s", "2", "-q")
		mnt := newLocation(t)
		mount := func(opts string) {
			if out, err := runCmd("mount", "-t", "tmpfs", "-o", opts, "pg-standby-test", mnt); err != nil {
				t.Fatalf("mount tmpfs on %s (%s): %v\n%s", mnt, opts, err, out)
			}
		}
		// 24 MB: less than the backup (about 35 MB and a 16 MB WAL segment).
		mount("size=24m,mode=0700")
		t.Cleanup(func() {
			if out, err := runCmd("umount", mnt); err != nil {
				t.Errorf("umount %s: %v\n%s", mnt, err, out)
			}
		})
		e := newFaultEnv(t, p, mnt)
		before := e.outsideSnapshot(t)
		_, err := run(t, backup.Options{DataDir: e.data})
		checkFailed(t, e, err, backup.Config, "not enough free space for the copy (nothing was written)", before)

		mount("remount,size=100m")
		progressed := make(chan struct{})
		tracker := progress.NewTracker()
		go func() {
			defer close(progressed)
			for tracker.Written.Load() < 1<<20 {
				time.Sleep(10 * time.Millisecond)
			}
			p.SQL(t, "CREATE TABLE bulk AS SELECT repeat('x', 1000) AS pad FROM generate_series(1, 50000)")
		}()
		_, err = run(t, backup.Options{DataDir: e.data, MaxRateKB: 4096, Progress: tracker})
		<-progressed
		checkFailed(t, e, err, backup.Transient, "no space left on device", before)
		if !strings.Contains(err.Error(), "free space") {
			t.Errorf("error %q does not say what to do", err)
		}
		// "Free space": grow the file system.
		mount("remount,size=512m")
		rerun(t, e, backup.Options{})
	})
}

func runCmd(name string, args ...string) (string, error) {
	out, err := execCommand(name, args...).CombinedOutput()
	return string(out), err
}

// TestFaultMaxWalSendersBusy: every WAL sender slot of the primary is taken
// by other connections. That may pass (a standby disconnects), so it is
// transient; once they are gone the rerun completes.
func TestFaultMaxWalSendersBusy(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		p := testpg.Start(t, testpg.Options{Conf: map[string]string{"max_wal_senders": "3"}})
		e := newFaultEnv(t, p, "")
		var others []*pgconnHolder
		for range 3 {
			others = append(others, holdReplicationConn(t, p))
		}
		before := e.outsideSnapshot(t)
		_, err := run(t, backup.Options{DataDir: e.data})
		if err == nil {
			t.Fatal("backup succeeded with every WAL sender taken")
		}
		t.Logf("error (%s): %v", backup.KindOf(err), err)
		// The server's own text: 17 and later quote the name ("max_wal_senders").
		for _, want := range []string{"max_wal_senders", "(currently 3)", "raise max_wal_senders"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
		if got := backup.KindOf(err); got != backup.Transient {
			t.Errorf("kind = %s, want transient", got)
		}
		if after := e.outsideSnapshot(t); after != before {
			t.Errorf("outside changed")
		}
		if after := snapshot(t, e.data); !strings.Contains(after, "basebackup.signal") || strings.Contains(after, "pg_control") {
			t.Errorf("data directory after the refusal:\n%s", after)
		}
		for _, o := range others {
			o.close()
		}
		// A closed connection's WAL sender slot is free only once its backend
		// has exited, which takes a moment on a loaded machine.
		p.WaitFor(t, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'", "0", 30*time.Second)
		rerun(t, e, backup.Options{})
	})
}

func execCommand(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }

// pgconnHolder keeps a replication connection (and so a WAL sender slot) open.
type pgconnHolder struct{ conn *pgconn.PgConn }

func holdReplicationConn(t *testing.T, p *testpg.Server) *pgconnHolder {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, p.ConnString()+" replication=true")
	if err != nil {
		t.Fatalf("open a replication connection: %v", err)
	}
	h := &pgconnHolder{conn: conn}
	t.Cleanup(h.close)
	return h
}

func (h *pgconnHolder) close() { h.conn.Close(context.Background()) }

// TestFaultBadConfiguration adds to TestRefusals the configurations that
// need no real primary or a fake one: each is a configuration error (exit
// status 78) that names what to fix, and nothing is written.
func TestFaultBadConfiguration(t *testing.T) {
	old := fp.Start(t, fp.Script{ServerVersion: "14.11 (Debian 14.11-1.pgdg120+2)"})
	ancient := fp.Start(t, fp.Script{ServerVersion: "9.6.24"})
	for _, c := range []struct {
		name, conninfo, want string
		srv                  *fp.Server
	}{
		{"unknown host", "host=no-such-primary.invalid port=5432 user=replicator connect_timeout=5",
			"check the host name in primary_conninfo", nil},
		{"server older than 15", old.ConnString(), `unsupported server version "14.11 (Debian 14.11-1.pgdg120+2)"`, old},
		{"server 9.6", ancient.ConnString(), `unsupported server version "9.6.24"`, ancient},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newHostileLayout(t, c.conninfo)
			before := snapshotExcept(t, l.parent)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := backup.Run(ctx, backup.Options{DataDir: l.data, Log: testLogger(t)})
			if err == nil {
				t.Fatal("backup succeeded")
			}
			t.Logf("error (%s): %v", backup.KindOf(err), err)
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
			if got := backup.KindOf(err); got != backup.Config {
				t.Errorf("kind = %s, want configuration", got)
			}
			if after := snapshotExcept(t, l.parent); after != before {
				t.Errorf("the refused attempt changed files:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if c.srv != nil {
				if cmds := c.srv.Commands(); len(cmds) != 0 {
					t.Errorf("commands sent to a server too old: %q", cmds)
				}
			}
		})
	}
}

// helperEnv names the environment of the permission helper process.
const helperEnv = "PG_STANDBY_TEST_AS_OTHER"

// TestRunAsOtherUser is not a test: TestFaultPermissionDenied runs the test
// binary again as the postgres user with this test selected, to run one
// backup attempt without root's power to ignore permissions.
func TestRunAsOtherUser(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("helper process for TestFaultPermissionDenied")
	}
	opt := backup.Options{DataDir: os.Getenv(helperEnv), Checkpoint: "fast"}
	if m := os.Getenv(helperEnv + "_MAPPING"); m != "" {
		old, new, _ := strings.Cut(m, "=")
		opt.TablespaceMapping = map[string]string{old: new}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := backup.Run(ctx, opt)
	if err == nil {
		fmt.Println("RESULT ok")
		return
	}
	fmt.Printf("RESULT %s\nERROR %s\n", backup.KindOf(err), strings.ReplaceAll(err.Error(), "\n", " "))
}

// runAsPostgres runs one attempt as the postgres user (the test must run as
// root) and returns its kind and error text.
func runAsPostgres(t *testing.T, dataDir string, mapping string) (string, string) {
	t.Helper()
	bin := filepath.Join(testpg.TempDir(t), "backup.test")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	testpg.Chown(t, filepath.Dir(bin))
	cmd := exec.Command("runuser", "-u", "postgres", "--", bin, "-test.run=^TestRunAsOtherUser$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"="+dataDir, helperEnv+"_MAPPING="+mapping)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper process: %v\n%s", err, out)
	}
	var kind, msg string
	for _, line := range strings.Split(string(out), "\n") {
		if k, ok := strings.CutPrefix(line, "RESULT "); ok {
			kind = k
		}
		if m, ok := strings.CutPrefix(line, "ERROR "); ok {
			msg = m
		}
	}
	if kind == "" {
		t.Fatalf("helper process printed no result:\n%s", out)
	}
	return kind, msg
}

// TestFaultPermissionDenied: the worker (here the postgres user) may not
// write the data directory or a tablespace location. The attempt is refused
// (exit status 77) and nothing is changed.
func TestFaultPermissionDenied(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		testpg.Require(t)
		testpg.RequireRoot(t, "permission denied: the test switches to the postgres user and so needs root")
		p := testpg.Start(t, testpg.Options{})
		loc := p.CreateTablespace(t, "perm_ts")
		p.SQL(t, "CREATE TABLE in_perm_ts TABLESPACE perm_ts AS SELECT 1 AS x")
		for _, c := range []struct {
			name  string
			setup func(t *testing.T, e *faultEnv) (mapping string)
			want  string
		}{
			{"data directory not readable", func(t *testing.T, e *faultEnv) string {
				os.Chmod(e.data, 0o700) // root's
				return loc + "=" + filepath.Join(e.ts, "new")
			}, "permission denied"},
			{"data directory of another user", func(t *testing.T, e *faultEnv) string {
				os.Chmod(e.data, 0o755) // root's, readable
				os.Chmod(filepath.Join(e.data, "postgresql.conf"), 0o644)
				os.Chmod(filepath.Join(e.data, "basebackup.signal"), 0o644)
				return loc + "=" + filepath.Join(e.ts, "new")
			}, "run pg-standby as the owner of the data directory"},
			{"data directory read-only", func(t *testing.T, e *faultEnv) string {
				testpg.Chown(t, e.data)
				os.Chmod(e.data, 0o500) // its owner's, but not writable
				os.Mkdir(filepath.Join(e.ts, "new"), 0o700)
				testpg.Chown(t, e.ts)
				return loc + "=" + filepath.Join(e.ts, "new")
			}, "permission denied"},
			{"tablespace location cannot be created", func(t *testing.T, e *faultEnv) string {
				testpg.Chown(t, e.data)
				os.Chmod(e.ts, 0o755) // root's: postgres cannot create in it
				return loc + "=" + filepath.Join(e.ts, "new")
			}, "create tablespace location"},
			{"tablespace location not readable", func(t *testing.T, e *faultEnv) string {
				testpg.Chown(t, e.data)
				os.Chmod(e.ts, 0o755)
				os.Mkdir(filepath.Join(e.ts, "closed"), 0o700) // root's
				return loc + "=" + filepath.Join(e.ts, "closed")
			}, "cannot read location"},
		} {
			t.Run(c.name, func(t *testing.T) {
				e := newFaultEnv(t, p, "")
				os.Chmod(e.parent, 0o711)
				mapping := c.setup(t, e)
				before, dataBefore, tsBefore := e.outsideSnapshot(t), snapshot(t, e.data), snapshot(t, e.ts)
				kind, msg := runAsPostgres(t, e.data, mapping)
				t.Logf("error (%s): %s", kind, msg)
				if kind != backup.Refused.String() || !strings.Contains(msg, c.want) {
					t.Errorf("got %s error %q, want a refused error containing %q", kind, msg, c.want)
				}
				for _, c := range []struct{ what, before, after string }{
					{"outside", before, e.outsideSnapshot(t)}, {"data directory", dataBefore, snapshot(t, e.data)}, {"tablespace parent", tsBefore, snapshot(t, e.ts)},
				} {
					if c.before != c.after {
						t.Errorf("the refused attempt changed the %s:\nbefore:\n%s\nafter:\n%s", c.what, c.before, c.after)
					}
				}
				checkPrimaryUnharmed(t, p)
			})
		}
	})
}
