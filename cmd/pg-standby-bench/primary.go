package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// primary is the throwaway PostgreSQL server every contender copies, of
// the version BENCH_PG names (testpg: the host's 15, or 17/18 by chroot
// from their rootfs).
type primary struct {
	cfg     config
	v       testpg.Version
	conf    string // extra postgresql.conf lines
	dir     string // work directory, reachable by postgres
	data    string
	port    int
	cred    *syscall.Credential // postgres when running as root
	uid     int
	gid     int
	started bool
}

func newPrimary(cfg config) (*primary, error) {
	p := &primary{cfg: cfg, v: cfg.pg, uid: os.Geteuid(), gid: os.Getegid()}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("look up postgres: %w", err)
		}
		p.uid, _ = strconv.Atoi(u.Uid)
		p.gid, _ = strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(p.uid), Gid: uint32(p.gid)}
	}
	dir, err := os.MkdirTemp("/tmp", "pg-standby-bench-")
	if err != nil {
		return nil, err
	}
	os.Chmod(dir, 0o755)
	os.Chown(dir, p.uid, p.gid)
	p.dir, p.data = dir, filepath.Join(dir, "primary")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	return p, nil
}

// pg runs one of the version's programs as the postgres user.
func (p *primary) pg(ctx context.Context, prog string, args ...string) error {
	_, err := p.pgOut(ctx, prog, args...)
	return err
}

// pgOut is pg returning the program's combined output.
func (p *primary) pgOut(ctx context.Context, prog string, args ...string) (string, error) {
	cmd, err := p.v.PGCommand(ctx, prog, args...)
	if err != nil {
		return "", fmt.Errorf("PostgreSQL %d %s: %w", p.v.Major, prog, err)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("PostgreSQL %d %s %s: %w\n%s", p.v.Major, prog, strings.Join(args, " "), err, tail(string(out)))
	}
	return string(out), nil
}

// pgArgv is the argv that runs the version's program prog as the postgres
// user, and the credential to run that argv with: for a rootfs version the
// argv starts as root (unshare, chroot) and drops to postgres itself.
func (p *primary) pgArgv(ctx context.Context, prog string, args ...string) ([]string, *syscall.Credential, error) {
	cmd, err := p.v.PGCommand(ctx, prog, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("PostgreSQL %d %s: %w", p.v.Major, prog, err)
	}
	if p.v.Root != "" {
		return cmd.Args, nil, nil
	}
	return cmd.Args, p.cred, nil
}

// start initdb's and starts the primary with enough WAL room for a bulk load.
func (p *primary) start(ctx context.Context) error {
	if err := p.pg(ctx, "initdb", "-D", p.data, "--data-checksums", "-A", "trust", "-U", "postgres", "--no-instructions"); err != nil {
		return err
	}
	conf := fmt.Sprintf(`port = %d
listen_addresses = '127.0.0.1'
unix_socket_directories = '%s'
wal_level = replica
max_wal_senders = 10
shared_buffers = 256MB
max_wal_size = 1GB
checkpoint_timeout = 30min
`, p.port, p.dir) + p.conf
	f, err := os.OpenFile(filepath.Join(p.data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	f.WriteString(conf)
	f.Close()
	hba, err := os.OpenFile(filepath.Join(p.data, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	hba.WriteString("host replication postgres 127.0.0.1/32 trust\n")
	hba.Close()
	if err := p.pg(ctx, "pg_ctl", "-D", p.data, "-l", filepath.Join(p.dir, "primary.log"), "-w", "start"); err != nil {
		return err
	}
	p.started = true
	return nil
}

// load (re)creates the pgbench tables at scale and checkpoints, so WAL from
// the load does not sit in pg_wal.
func (p *primary) load(ctx context.Context, scale int) error {
	if err := p.pg(ctx, "pgbench", "-h", p.dir, "-p", strconv.Itoa(p.port), "-U", "postgres", "-i", "-q", "-s", strconv.Itoa(scale), "postgres"); err != nil {
		return err
	}
	return p.sql(ctx, "CHECKPOINT")
}

func (p *primary) sql(ctx context.Context, q string) error {
	_, err := p.sqlOut(ctx, q)
	return err
}

// sqlOut runs q with the version's psql and returns its output (rows
// unaligned, notices included).
func (p *primary) sqlOut(ctx context.Context, q string) (string, error) {
	return p.pgOut(ctx, "psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", p.dir, "-p", strconv.Itoa(p.port), "-U", "postgres", "-d", "postgres", "-c", q)
}

func (p *primary) conninfo() string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres", p.port)
}

// stop stops the server and removes the work directory.
func (p *primary) stop() {
	if p.started {
		p.pg(context.Background(), "pg_ctl", "-D", p.data, "-m", "fast", "-w", "stop")
	}
	os.RemoveAll(p.dir)
}

// size is the bytes of a directory tree (apparent sizes of regular files).
func size(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// prepareInstance makes a fresh minimal instance at dir.
func (p *primary) prepareInstance(dir string) error { return p.prepareInstanceConn(dir, p.conninfo()) }

// prepareInstanceConn makes a fresh minimal instance at dir whose
// primary_conninfo is conninfo.
func (p *primary) prepareInstanceConn(dir, conninfo string) error {
	os.RemoveAll(dir)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	conf := "primary_conninfo = '" + strings.ReplaceAll(conninfo, "'", "''") + "'\n"
	if err := os.WriteFile(filepath.Join(dir, "postgresql.conf"), []byte(conf), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "basebackup.signal"), nil, 0o600); err != nil {
		return err
	}
	for _, f := range []string{dir, filepath.Join(dir, "postgresql.conf"), filepath.Join(dir, "basebackup.signal")} {
		os.Chown(f, p.uid, p.gid)
	}
	return nil
}

func cleanDir(dir string) { exec.Command("rm", "-rf", dir).Run() }

// verify runs pg_verifybackup of the primary's major on dir, ignoring the
// configuration files the instance keeps (as the tests' oracle does): a
// result that fails is never counted.
func (p *primary) verify(ctx context.Context, dir string) error {
	var args []string
	for _, f := range instance.ConfigFiles {
		args = append(args, "-i", f)
	}
	out, err := p.v.Output(ctx, "pg_verifybackup", append(args, dir)...)
	if err != nil {
		return fmt.Errorf("PostgreSQL %d pg_verifybackup %s: %w", p.v.Major, dir, err)
	}
	if !strings.Contains(out, "backup successfully verified") {
		return fmt.Errorf("PostgreSQL %d pg_verifybackup %s: %s", p.v.Major, dir, out)
	}
	return nil
}
