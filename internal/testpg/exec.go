package testpg

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DefaultBinDir is used when PG_BINDIR is not set.
const DefaultBinDir = "/usr/lib/postgresql/15/bin"

// BinDir is where PostgreSQL programs are: $PG_BINDIR or /usr/lib/postgresql/15/bin.
func BinDir() string {
	if d := os.Getenv("PG_BINDIR"); d != "" {
		return d
	}
	return DefaultBinDir
}

// Available reports whether initdb exists in BinDir.
func Available() bool {
	fi, err := os.Stat(filepath.Join(BinDir(), "initdb"))
	return err == nil && !fi.IsDir()
}

// Require skips the test when the PostgreSQL version it runs with
// (VersionOf: the host's 15 outside ForEachVersion) cannot run here, naming
// what is missing (PG_BINDIR and the Debian package for 15, the rootfs for
// 17/18). When the environment variable CI is "true" it fails the test
// instead: CI must never silently skip the real-server tests.
func Require(t testing.TB) {
	t.Helper()
	VersionOf(t).Skip(t)
}

// RequireIncremental is Require for a test of incremental backup, run with
// v: before PostgreSQL 17 it skips, saying so. INCREMENTAL backups and WAL
// summaries (UPLOAD_MANIFEST, summarize_wal) came in PostgreSQL 17.
func RequireIncremental(t testing.TB, v Version) {
	t.Helper()
	Require(t)
	if v.Major < 17 {
		t.Skipf("PostgreSQL %d has no incremental backup (INCREMENTAL backups and WAL summaries came in 17)", v.Major)
	}
}

// SkipShort skips t under go test -short, the fast tier, saying why (what
// it needs: PostgreSQL, root, systemd, or just time). It is the one place
// that tier is decided; Require, Start and RequireRoot call it.
func SkipShort(t testing.TB, why string) {
	t.Helper()
	if fastTier() {
		t.Skip(why + ": skipped under -short")
	}
}

// fastTier is testing.Short, a variable so that testpg's own tests of the
// skip messages can look past it.
var fastTier = testing.Short

// RequireRoot skips a test that needs root, saying why, when not run as
// root; under CI=true it fails instead, as Require does.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	SkipShort(t, "needs root")
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(why + " [CI=true: not skipping]")
	}
	t.Skip(why)
}

// pgUser is the system user PostgreSQL programs run as: "postgres" when the
// tests run as root, nil (the current user) otherwise.
type pgUser struct {
	uid, gid uint32
	home     string
}

var (
	pgUserOnce sync.Once
	pgUserVal  *pgUser
	pgUserErr  error
)

// runAsUser returns the user PostgreSQL programs must run as, or nil to run as
// the current user.
func runAsUser() (*pgUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	pgUserOnce.Do(func() {
		u, err := user.Lookup("postgres")
		if err != nil {
			pgUserErr = fmt.Errorf("running as root, PostgreSQL must run as system user \"postgres\": %w", err)
			return
		}
		uid, err := strconv.ParseUint(u.Uid, 10, 32)
		if err != nil {
			pgUserErr = fmt.Errorf("uid of user postgres %q: %w", u.Uid, err)
			return
		}
		gid, err := strconv.ParseUint(u.Gid, 10, 32)
		if err != nil {
			pgUserErr = fmt.Errorf("gid of user postgres %q: %w", u.Gid, err)
			return
		}
		pgUserVal = &pgUser{uid: uint32(uid), gid: uint32(gid), home: u.HomeDir}
	})
	return pgUserVal, pgUserErr
}

// pgCommand builds a command for the PostgreSQL program name of version v,
// run as the postgres user when root, with PG* variables removed from the
// environment and a C locale. extraEnv entries are appended ("KEY=value").
func (v Version) pgCommand(ctx context.Context, name string, args []string, extraEnv ...string) (*exec.Cmd, error) {
	return v.command(ctx, true, filepath.Join(v.BinDir, name), args, extraEnv...)
}

// command is pgCommand for a program given by path (inside v.Root), run as
// the postgres user when asPG and root, else as the current user.
func (v Version) command(ctx context.Context, asPG bool, path string, args []string, extraEnv ...string) (*exec.Cmd, error) {
	var u *pgUser
	if asPG {
		var err error
		if u, err = runAsUser(); err != nil {
			return nil, err
		}
	}
	argv := append([]string{path}, args...)
	if v.Root != "" {
		var err error
		if argv, err = v.rootfsArgv(u != nil, path, args); err != nil {
			return nil, err
		}
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = "/"
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PG") || strings.HasPrefix(k, "LC_") || k == "LANG" || k == "LANGUAGE" {
			continue
		}
		if u != nil && (k == "HOME" || k == "USER" || k == "LOGNAME") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "LC_ALL=C")
	if u != nil {
		env = append(env, "HOME="+u.home, "USER=postgres", "LOGNAME=postgres")
	}
	cmd.Env = append(env, extraEnv...)
	// Own process group: a ^C on the terminal must not kill pg_ctl half-way.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if u != nil && v.Root == "" {
		// Groups nil: supplementary groups are cleared (none of root's are kept).
		// (In a rootfs, chroot --userspec drops to the user instead.)
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: u.uid, Gid: u.gid}
	}
	// Never wait for grandchildren (a daemonized postmaster) holding our pipes.
	cmd.WaitDelay = 5 * time.Second
	return cmd, nil
}

// runPG runs a PostgreSQL program of v to completion and returns its combined output.
func (v Version) runPG(ctx context.Context, name string, args []string, extraEnv ...string) (string, error) {
	cmd, err := v.pgCommand(ctx, name, args, extraEnv...)
	if err != nil {
		return "", err
	}
	return combined(cmd, name, args)
}

func combined(cmd *exec.Cmd, name string, args []string) (string, error) {
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}
