package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pg-standby/pg-standby/internal/testpg"
)

// patroniSecret is the replication password: it must reach pg-standby only
// through Patroni's pgpass (PGPASSFILE), never argv, logs or other files.
const patroniSecret = "rep-S3cret-patroni"

var copyDoneRe = regexp.MustCompile(`copy complete: Patroni.* written=(\d+) unchanged=(\d+)`)

// TestPatroni runs pg-standby as the replica method of real Patroni
// members (Debian's patroni 3.0.2 and etcd 3.4 on loopback ports,
// PostgreSQL 15): the first replica, a reinit that reuses the replica's
// files, and a copy killed mid-way (Patroni and pg-standby, SIGKILL) that
// the next attempt resumes. Host tools: PostgreSQL 15 only.
func TestPatroni(t *testing.T) {
	waiting(t)
	testpg.RequireRoot(t, "Patroni runs as the postgres user; switching to it needs root")
	for _, p := range []string{"patroni", "patronictl", "etcd", patroniBinDir + "/postgres"} {
		if _, err := exec.LookPath(p); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s missing (scripts/install-deps.sh installs patroni, etcd-server, etcd-client) [CI=true: not skipping]", p)
			}
			t.Skipf("%s missing: apt-get install patroni etcd-server etcd-client postgresql-15", p)
		}
	}
	dir := testpg.TempDir(t)
	c := &patroniCluster{dir: dir, etcdPort: freePort(t)}
	c.startEtcd(t)
	m1 := c.member(t, "m1")
	m1.start(t, 0)
	c.waitState(t, "m1", "Leader", "running", 90*time.Second)
	m1.psql(t, "CREATE TABLE IF NOT EXISTS marker(v text)")
	m1.pgbench(t, "-i", "-s", "6", "-q")

	t.Logf("patronictl list, before the replica:\n%s", c.ctl(t, "list"))

	// 1. A new member: Patroni creates it with pg-standby.
	m2 := c.member(t, "m2")
	m2.start(t, 0)
	c.waitReplica(t, m2)
	t.Logf("patronictl list, replica created by pg-standby:\n%s", c.ctl(t, "list"))
	log := m2.log(t)
	if !strings.Contains(log, "replica has been created using pgstandby") {
		t.Fatalf("m2's log does not say Patroni used pgstandby:\n%s", log)
	}
	t.Logf("m2's log, the replica method:\n%s", methodLines(log))
	if w, _ := copyDone(t, log); w == 0 {
		t.Errorf("first copy wrote nothing? %s", log)
	}
	m1.psql(t, "INSERT INTO marker VALUES ('after-first')")
	m2.waitRow(t, "after-first")

	// 2. patronictl reinit: pg-standby again, over the kept replica.
	off := len(m2.log(t))
	c.ctl(t, "reinit", c.scope(), "m2", "--force", "--wait")
	c.waitReplica(t, m2)
	log = m2.log(t)[off:]
	if !strings.Contains(log, "replica has been created using pgstandby") {
		t.Fatalf("reinit did not use pgstandby:\n%s", log)
	}
	t.Logf("m2's log, reinit:\n%s", methodLines(log))
	w, u := copyDone(t, log)
	t.Logf("reinit: written=%d unchanged=%d", w, u)
	if u == 0 || u < w {
		t.Errorf("reinit over the kept replica: written=%d unchanged=%d, want most bytes unchanged", w, u)
	}

	// 3. A copy killed mid-way: Patroni and its pg-standby die by SIGKILL
	// (a host or unit crash); the next attempt resumes.
	m2.stop(t)
	if err := os.RemoveAll(m2.dataDir); err != nil {
		t.Fatal(err)
	}
	off = len(m2.log(t))
	m2.start(t, 4096) // kB/s: about 25 s for the ~100 MB primary
	child := m2.waitCopying(t, 24<<20)
	checkNoSecret(t, child)
	m2.kill(t)
	syscall.Kill(child, syscall.SIGKILL)
	waitGone(t, child)
	if _, err := os.Stat(filepath.Join(m2.dataDir, "global/pg_control")); err == nil {
		t.Fatal("a copy killed mid-way has global/pg_control: it looks valid")
	}
	if _, err := os.Stat(filepath.Join(m2.dataDir, "basebackup.signal")); err != nil {
		t.Fatalf("the killed copy left no basebackup.signal: %v", err)
	}
	killedAt := dirBytes(t, m2.dataDir)
	t.Logf("killed Patroni and pg-standby with %d bytes of the copy on disk (pg_wal excluded)", killedAt)
	m2.start(t, 0)
	// Patroni 3.0.2 does not retry by itself on a non-empty directory
	// without pg_control: it asks for a reinit, which keep_data resumes.
	m2.waitLog(t, off, "system ID is invalid", 60*time.Second)
	t.Logf("patronictl list, copy killed mid-way:\n%s", c.ctl(t, "list"))
	off = len(m2.log(t))
	c.ctl(t, "reinit", c.scope(), "m2", "--force", "--wait")
	c.waitReplica(t, m2)
	log = m2.log(t)[off:]
	if !strings.Contains(log, "resuming the copy an earlier run left") || !strings.Contains(log, "replica has been created using pgstandby") {
		t.Fatalf("the attempt after the kill did not resume with pgstandby:\n%s", log)
	}
	t.Logf("m2's log, resumed:\n%s", methodLines(log))
	w, u = copyDone(t, log)
	t.Logf("resumed after SIGKILL at %d bytes on disk: written=%d unchanged=%d", killedAt, w, u)
	// A file cut off by the kill is rewritten whole (file-level delta;
	// block-level resume is issue 15): at least the catalogs are kept.
	if u < 4<<20 || w == 0 {
		t.Errorf("resumed copy: written=%d unchanged=%d, want the files on disk when killed (%d bytes) mostly kept", w, u, killedAt)
	}
	m1.psql(t, "INSERT INTO marker VALUES ('after-resume')")
	m2.waitRow(t, "after-resume")
	t.Logf("patronictl list, after the resumed copy:\n%s", c.ctl(t, "list"))
	for _, m := range []*patroniMember{m1, m2} {
		if strings.Contains(m.log(t), patroniSecret) {
			t.Errorf("%s's log holds the replication password", m.name)
		}
	}
}

const patroniBinDir = "/usr/lib/postgresql/15/bin"

type patroniCluster struct {
	dir      string
	etcdPort string
}

func (c *patroniCluster) scope() string { return "pgstb" }

func (c *patroniCluster) startEtcd(t *testing.T) {
	peer := freePort(t)
	data := filepath.Join(c.dir, "etcd")
	logf, err := os.Create(filepath.Join(c.dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("etcd", "--name", "t", "--data-dir", data,
		"--listen-client-urls", "http://127.0.0.1:"+c.etcdPort, "--advertise-client-urls", "http://127.0.0.1:"+c.etcdPort,
		"--listen-peer-urls", "http://127.0.0.1:"+peer, "--initial-advertise-peer-urls", "http://127.0.0.1:"+peer,
		"--initial-cluster", "t=http://127.0.0.1:"+peer, "--listen-metrics-urls", "")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := exec.Command("etcdctl", "--endpoints", "127.0.0.1:"+c.etcdPort, "endpoint", "health").CombinedOutput()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("etcd not healthy: %v %s\n%s", err, out, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ctl runs patronictl with m1's configuration.
func (c *patroniCluster) ctl(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "patronictl", append([]string{"-c", filepath.Join(c.dir, "m1", "patroni.yml")}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+c.dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("patronictl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

type ctlMember struct {
	Member, Role, State string
}

func (c *patroniCluster) waitState(t *testing.T, name, role, state string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	var last string
	for time.Now().Before(deadline) {
		out := c.ctl(t, "list", "-f", "json")
		last = out
		var ms []ctlMember
		if json.Unmarshal([]byte(out), &ms) == nil {
			for _, m := range ms {
				if m.Member == name && m.Role == role && m.State == state {
					return
				}
			}
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("%s not %s/%s after %s: %s\n%s log:\n%s", name, role, state, d, last, name, tail(c.logOf(name), 4000))
}

// waitReplica waits until patronictl lists m as a running replica (3.0.2
// has no "streaming" state) whose WAL receiver streams.
func (c *patroniCluster) waitReplica(t *testing.T, m *patroniMember) {
	t.Helper()
	c.waitState(t, m.name, "Replica", "running", 90*time.Second)
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := strings.TrimSpace(m.psql(t, "SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'none')"))
		if st == "streaming" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's WAL receiver is %q, not streaming", m.name, st)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// methodLines are the lines of a member's log about the replica method.
func methodLines(log string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "pgstandby") || strings.Contains(l, "instance=") || strings.Contains(l, "basebackup") || strings.Contains(l, "reinit") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func (c *patroniCluster) logOf(name string) string {
	b, _ := os.ReadFile(filepath.Join(c.dir, name, "patroni.log"))
	return string(b)
}

type patroniMember struct {
	c                *patroniCluster
	name, dir        string
	dataDir          string
	pgPort, restPort string
	cmd              *exec.Cmd
	logf             *os.File
	uid, gid         int
	ownerEnv         []string
}

func (c *patroniCluster) member(t *testing.T, name string) *patroniMember {
	uid, gid := pgOwner(t)
	m := &patroniMember{c: c, name: name, dir: filepath.Join(c.dir, name), pgPort: freePort(t), restPort: freePort(t), uid: uid, gid: gid}
	m.dataDir = filepath.Join(m.dir, "data")
	if err := os.Mkdir(m.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	asPostgres(t, m.dir)
	m.ownerEnv = []string{"HOME=" + m.dir, "PGHOST=" + m.dir, "PGPORT=" + m.pgPort, "PGUSER=postgres"}
	t.Cleanup(func() { m.stopAll() })
	return m
}

// config is the member's patroni.yml; maxRate (kB/s, 0: none) slows pg-standby.
func (m *patroniMember) config(maxRate int) string {
	rate := ""
	if maxRate > 0 {
		rate = fmt.Sprintf("\n    max-rate: %d", maxRate)
	}
	return fmt.Sprintf(`scope: %[1]s
name: %[2]s
log:
  level: INFO
restapi:
  listen: 127.0.0.1:%[3]s
  connect_address: 127.0.0.1:%[3]s
etcd3:
  hosts: 127.0.0.1:%[4]s
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 1
    retry_timeout: 5
    postgresql:
      use_pg_rewind: false
      parameters:
        wal_level: replica
        max_wal_senders: 10
        max_replication_slots: 10
        wal_keep_size: 256MB
  initdb:
  - encoding: UTF8
  - data-checksums
postgresql:
  listen: 127.0.0.1:%[5]s
  connect_address: 127.0.0.1:%[5]s
  data_dir: %[6]s
  bin_dir: %[7]s
  pgpass: %[8]s/pgpass
  authentication:
    replication:
      username: replicator
      password: %[9]s
    superuser:
      username: postgres
      password: su-S3cret
  parameters:
    unix_socket_directories: %[8]s
  pg_hba:
  - local all all trust
  - host replication replicator 127.0.0.1/32 scram-sha-256
  - host all all 127.0.0.1/32 scram-sha-256
  create_replica_methods:
  - pgstandby
  - basebackup
  pgstandby:
    command: %[10]s patroni-replica
    keep_data: true
    retries: 0%[11]s
`, m.c.scope(), m.name, m.restPort, m.c.etcdPort, m.pgPort, m.dataDir, patroniBinDir, m.dir, patroniSecret, binary, rate)
}

func (m *patroniMember) start(t *testing.T, maxRate int) {
	t.Helper()
	cfg := filepath.Join(m.dir, "patroni.yml")
	if err := os.WriteFile(cfg, []byte(m.config(maxRate)), 0o600); err != nil {
		t.Fatal(err)
	}
	asPostgres(t, cfg)
	logf, err := os.OpenFile(filepath.Join(m.dir, "patroni.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	m.logf = logf
	m.cmd = exec.Command("patroni", cfg)
	m.cmd.Dir = m.dir
	m.cmd.Env = append(os.Environ(), m.ownerEnv...)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(m.uid), Gid: uint32(m.gid)}}
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start patroni %s: %v", m.name, err)
	}
}

// stop ends Patroni as systemd would (SIGTERM: it stops postgres first).
func (m *patroniMember) stop(t *testing.T) {
	t.Helper()
	if m.cmd == nil {
		return
	}
	if !m.terminate() {
		t.Errorf("patroni %s did not stop within 60 s of SIGTERM", m.name)
	}
	m.cmd = nil
	m.logf.Close()
}

// terminate sends Patroni SIGTERM and waits for it to end, killing it
// after 60 s; it reports whether it stopped in time.
func (m *patroniMember) terminate() bool {
	m.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { m.cmd.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(60 * time.Second):
		m.cmd.Process.Kill()
		<-done
		return false
	}
}

// kill ends Patroni by SIGKILL: its child (pg-standby) lives on, orphaned.
func (m *patroniMember) kill(t *testing.T) {
	m.cmd.Process.Kill()
	m.cmd.Wait()
	m.cmd = nil
	m.logf.Close()
}

// stopAll is the cleanup: Patroni stopped, and a postgres it may have
// left (after a SIGKILL) stopped too.
func (m *patroniMember) stopAll() {
	if m.cmd != nil {
		m.terminate()
		m.logf.Close()
	}
	if _, err := os.Stat(filepath.Join(m.dataDir, "postmaster.pid")); err == nil {
		cmd := exec.Command(patroniBinDir+"/pg_ctl", "stop", "-D", m.dataDir, "-m", "immediate", "-w")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(m.uid), Gid: uint32(m.gid)}}
		cmd.Run()
	}
}

func (m *patroniMember) log(t *testing.T) string { return m.c.logOf(m.name) }

func (m *patroniMember) waitLog(t *testing.T, off int, want string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if l := m.log(t); len(l) > off && strings.Contains(l[off:], want) {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("%s's log does not say %q after %s:\n%s", m.name, want, d, tail(m.log(t)[off:], 4000))
}

// asOwner runs a PostgreSQL client program as postgres on the member's socket.
func (m *patroniMember) asOwner(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(patroniBinDir+"/"+name, args...)
	cmd.Env = append(os.Environ(), m.ownerEnv...)
	cmd.Dir = m.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(m.uid), Gid: uint32(m.gid)}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v on %s: %v\n%s", name, args, m.name, err, out)
	}
	return string(out)
}

func (m *patroniMember) psql(t *testing.T, sql string) string {
	return m.asOwner(t, "psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c", sql)
}

func (m *patroniMember) pgbench(t *testing.T, args ...string) {
	m.asOwner(t, "pgbench", append(args, "postgres")...)
}

// waitRow waits until the replica has replayed the marker row v.
func (m *patroniMember) waitRow(t *testing.T, v string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if strings.TrimSpace(m.psql(t, "SELECT count(*) FROM marker WHERE v = '"+v+"'")) == "1" {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("%s never replayed the row %q", m.name, v)
}

// waitCopying waits until Patroni's pg-standby child has put at least n
// bytes into the data directory and returns its pid.
func (m *patroniMember) waitCopying(t *testing.T, n int64) int {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if pid := childRunning(m.cmd.Process.Pid, "patroni-replica"); pid != 0 && dirBytes(t, m.dataDir) >= n {
			return pid
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no pg-standby child of %s copied %d bytes:\n%s", m.name, n, tail(m.log(t), 4000))
	return 0
}

// childRunning returns the pid of parent's child whose command line holds arg.
func childRunning(parent int, arg string) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", parent))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(s)
			cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if strings.Contains(string(cl), arg) {
				return pid
			}
		}
	}
	return 0
}

// checkNoSecret: the password is in neither pg-standby's argv nor the
// configuration it wrote (Patroni passes it in PGPASSFILE).
func checkNoSecret(t *testing.T, pid int) {
	t.Helper()
	cl, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatal(err)
	}
	args := strings.Split(strings.TrimRight(string(cl), "\x00"), "\x00")
	t.Logf("Patroni ran: %q", args)
	if strings.Contains(string(cl), patroniSecret) {
		t.Errorf("the password is in pg-standby's argv: %q", args)
	}
	env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if !strings.Contains(string(env), "PGPASSFILE=") {
		t.Errorf("Patroni passed no PGPASSFILE")
	}
	for _, a := range args {
		if d, ok := strings.CutPrefix(a, "--datadir="); ok {
			b, err := os.ReadFile(filepath.Join(d, patroniConf))
			if err != nil || strings.Contains(string(b), patroniSecret) {
				t.Errorf("%s: %v, or it holds the password", patroniConf, err)
			}
		}
	}
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/cmdline", pid)); err != nil {
			return
		}
		// The orphan is reaped by init; a zombie has an empty cmdline.
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); len(b) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("pg-standby %d still running after SIGKILL", pid)
}

// dirBytes is the data in the regular files under dir but for pg_wal (the
// streamed WAL, which every attempt starts anew): what the copy has written,
// not the files' sizes, since a big file's size is reserved when it is
// opened (directio: fallocate's unwritten extents, holes to SEEK_DATA).
func dirBytes(t *testing.T, dir string) int64 {
	var n int64
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() && p == filepath.Join(dir, "pg_wal") {
			return filepath.SkipDir
		}
		if err == nil && fi.Mode().IsRegular() {
			n += dataBytes(p, fi.Size())
		}
		return nil
	})
	return n
}

// dataBytes sums the data extents of the file at p (size bytes long) as
// lseek's SEEK_DATA and SEEK_HOLE find them.
func dataBytes(p string, size int64) int64 {
	f, err := os.Open(p)
	if err != nil {
		return 0
	}
	defer f.Close()
	fd := int(f.Fd())
	var n int64
	for off := int64(0); off < size; {
		start, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err != nil {
			break // ENXIO: no data from off on
		}
		end, err := unix.Seek(fd, start, unix.SEEK_HOLE)
		if err != nil || end > size {
			end = size
		}
		n += end - start
		off = end
	}
	return n
}

func copyDone(t *testing.T, log string) (written, unchanged int64) {
	t.Helper()
	ms := copyDoneRe.FindAllStringSubmatch(log, -1)
	if len(ms) == 0 {
		t.Fatalf("no 'copy complete' line from pg-standby in:\n%s", tail(log, 4000))
	}
	m := ms[len(ms)-1]
	written, _ = strconv.ParseInt(m[1], 10, 64)
	unchanged, _ = strconv.ParseInt(m[2], 10, 64)
	return written, unchanged
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
