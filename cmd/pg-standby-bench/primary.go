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
)

// primary is the throwaway PostgreSQL server every contender copies.
type primary struct {
	cfg     config
	dir     string // work directory, reachable by postgres
	data    string
	port    int
	cred    *syscall.Credential // postgres when running as root
	uid     int
	gid     int
	started bool
}

func newPrimary(cfg config) (*primary, error) {
	p := &primary{cfg: cfg, uid: os.Geteuid(), gid: os.Getegid()}
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

func (p *primary) pg(ctx context.Context, prog string, args ...string) error {
	_, err := runAs(ctx, p.cred, nil, append([]string{filepath.Join(p.cfg.bindir, prog)}, args...)...)
	return err
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
`, p.port, p.dir)
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
	if err := p.pg(ctx, "pgbench", "-h", p.dir, "-p", strconv.Itoa(p.port), "-i", "-q", "-s", strconv.Itoa(scale), "postgres"); err != nil {
		return err
	}
	return p.sql(ctx, "CHECKPOINT")
}

func (p *primary) sql(ctx context.Context, q string) error {
	psql := filepath.Join(p.cfg.bindir, "psql")
	if _, err := os.Stat(psql); err != nil {
		psql = "psql"
	}
	_, err := runAs(ctx, p.cred, nil, psql, "-X", "-q", "-h", p.dir, "-p", strconv.Itoa(p.port), "-d", "postgres", "-c", q)
	return err
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
func (p *primary) prepareInstance(dir string) error {
	os.RemoveAll(dir)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	conf := "primary_conninfo = '" + strings.ReplaceAll(p.conninfo(), "'", "''") + "'\n"
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
