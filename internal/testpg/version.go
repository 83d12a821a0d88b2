package testpg

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Version is one PostgreSQL major version the tests can run: 15 from the
// host (Debian 12's postgresql-15, or PG_BINDIR), 17 and 18 from a minbase
// rootfs (scripts/pg-rootfs.sh) whose programs run by chroot, as the host's
// postgres uid, in a private mount namespace that binds /proc, /dev and the
// temporary directories at their own paths, so that data directories and unix
// sockets have the same path inside and outside.
type Version struct {
	Major  int    // 15, 17, 18
	Suite  string // Debian suite the programs come from
	Root   string // rootfs the programs run in; "" for the host
	BinDir string // directory of initdb, pg_ctl, postgres, … (inside Root)
	reason string // why this version cannot run here; "" when it can
}

// Name is the subtest name of the version: "pg15", "pg17", "pg18".
func (v Version) Name() string { return "pg" + strconv.Itoa(v.Major) }

// Default is the version Start and StartStandby use outside ForEachVersion.
func Default() Version { return hostVersion() }

func hostVersion() Version {
	v := Version{Major: 15, Suite: "bookworm", BinDir: BinDir()}
	if !Available() {
		v.reason = fmt.Sprintf("PostgreSQL not found: no initdb in %s (set PG_BINDIR to the directory holding initdb/pg_ctl/postgres, or install the Debian package postgresql-15: apt-get install -y postgresql-15)", BinDir())
	}
	return v
}

// rootfsSuites are the majors testpg runs from a rootfs, and their suites.
var rootfsSuites = map[int]string{17: "trixie", 18: "sid"}

// RootfsCache is where scripts/pg-rootfs.sh leaves its rootfs trees:
// ${XDG_CACHE_HOME:-~/.cache}/pg-standby-testpg.
func RootfsCache() string {
	d, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(d, "pg-standby-testpg")
}

func rootfsVersion(major int) Version {
	suite := rootfsSuites[major]
	v := Version{Major: major, Suite: suite, BinDir: fmt.Sprintf("/usr/lib/postgresql/%d/bin", major)}
	build := fmt.Sprintf("as root: scripts/pg-rootfs.sh %d (mmdebstrap, %s)", major, suite)
	if os.Geteuid() != 0 {
		v.reason = fmt.Sprintf("PostgreSQL %d runs from a rootfs by chroot, which needs root (then %s)", major, build)
		return v
	}
	cache := RootfsCache()
	if cache == "" {
		v.reason = "no cache directory ($XDG_CACHE_HOME or $HOME) for the PostgreSQL rootfs"
		return v
	}
	v.Root = filepath.Join(cache, fmt.Sprintf("%s-pg%d", suite, major))
	if _, err := os.Stat(filepath.Join(v.Root, v.BinDir, "initdb")); err != nil {
		v.reason = fmt.Sprintf("no PostgreSQL %d rootfs at %s: build it %s", major, v.Root, build)
		return v
	}
	u, err := runAsUser()
	if err != nil {
		v.reason = err.Error()
		return v
	}
	passwd, err := os.ReadFile(filepath.Join(v.Root, "etc/passwd"))
	if err != nil || !hasUID(string(passwd), u.uid) {
		v.reason = fmt.Sprintf("rootfs %s has no passwd entry for the host's postgres uid %d: remove it and rebuild it %s", v.Root, u.uid, build)
	}
	return v
}

func hasUID(passwd string, uid uint32) bool {
	for _, line := range strings.Split(passwd, "\n") {
		f := strings.Split(line, ":")
		if len(f) > 2 && f[2] == strconv.FormatUint(uint64(uid), 10) {
			return true
		}
	}
	return false
}

var (
	versionsOnce sync.Once
	versionsVal  []Version
	versionsErr  error
)

// Versions are the versions PGSTANDBY_TEST_PG selects (comma-separated
// majors, e.g. "15,17"; default all: 15,17,18), each with the reason it cannot
// run here, if any (see Skip).
func Versions() ([]Version, error) {
	versionsOnce.Do(func() {
		versionsVal, versionsErr = parseVersions(os.Getenv("PGSTANDBY_TEST_PG"))
	})
	return versionsVal, versionsErr
}

func parseVersions(sel string) ([]Version, error) {
	list := sel
	if strings.TrimSpace(list) == "" {
		list = "15,17,18"
	}
	var vs []Version
	for _, f := range strings.Split(list, ",") {
		major, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(f), "pg"))
		switch {
		case err == nil && major == 15:
			vs = append(vs, hostVersion())
		case err == nil && rootfsSuites[major] != "":
			vs = append(vs, rootfsVersion(major))
		default:
			return nil, fmt.Errorf("PGSTANDBY_TEST_PG=%q: %q is not one of 15, 17, 18", sel, f)
		}
	}
	slices.SortFunc(vs, func(a, b Version) int { return a.Major - b.Major })
	return slices.CompactFunc(vs, func(a, b Version) bool { return a.Major == b.Major }), nil
}

// Skip skips t when v cannot run here, with the reason; under CI=true it
// fails t instead: CI must never silently skip a version. Under -short it
// always skips: the fast tier runs without PostgreSQL.
func (v Version) Skip(t testing.TB) {
	t.Helper()
	SkipShort(t, "needs PostgreSQL")
	if v.reason == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(v.reason + " [CI=true: not skipping]")
	}
	t.Skip(v.reason)
}

// Available reports whether v can run here.
func (v Version) Available() bool { return v.reason == "" }

// ForEachVersion runs fn as a subtest per selected version (Versions), named
// by it ("pg15", "pg17", "pg18"); an unavailable version's subtest skips
// (fails under CI=true). Inside fn, Start, StartStandby and VersionOf(t) — also
// for subtests of t — use v.
func ForEachVersion(t *testing.T, fn func(t *testing.T, v Version)) {
	t.Helper()
	vs, err := Versions()
	if err != nil {
		t.Fatalf("testpg: %v", err)
	}
	for _, v := range vs {
		t.Run(v.Name(), func(t *testing.T) {
			v.Skip(t)
			bindVersion(t, v)
			fn(t, v)
		})
	}
}

// Versions bound to tests by ForEachVersion, by test name: a subtest's name
// starts with its parent's name and "/".
var (
	boundMu sync.Mutex
	bound   = map[string]Version{}
)

func bindVersion(t *testing.T, v Version) {
	boundMu.Lock()
	bound[t.Name()] = v
	boundMu.Unlock()
	t.Cleanup(func() {
		boundMu.Lock()
		delete(bound, t.Name())
		boundMu.Unlock()
	})
}

// VersionOf is the version ForEachVersion runs t (or an ancestor of t) with,
// else Default().
func VersionOf(t testing.TB) Version {
	boundMu.Lock()
	defer boundMu.Unlock()
	for name := t.Name(); ; {
		if v, ok := bound[name]; ok {
			return v
		}
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			return Default()
		}
		name = name[:i]
	}
}

// Command builds a command running the version's program name with args as
// the current user (root stays root: pg_verifybackup and pg_waldump may read
// root-owned backups), with the environment cleaned as for the server.
func (v Version) Command(ctx context.Context, name string, args ...string) (*exec.Cmd, error) {
	return v.command(ctx, false, filepath.Join(v.BinDir, name), args)
}

// PGCommand is Command run as the user the servers run as (postgres when
// root): initdb, pg_ctl and postgres itself (postgres -C) refuse root.
func (v Version) PGCommand(ctx context.Context, name string, args ...string) (*exec.Cmd, error) {
	return v.command(ctx, true, filepath.Join(v.BinDir, name), args)
}

// Output runs Command to completion and returns its combined output; the
// error carries the output.
func (v Version) Output(ctx context.Context, name string, args ...string) (string, error) {
	cmd, err := v.Command(ctx, name, args...)
	if err != nil {
		return "", err
	}
	return combined(cmd, name, args)
}

// rootfsBinds are the host directories bound at their own path inside the
// rootfs: the testpg base directory lives in one of the temporary ones.
func rootfsBinds() []string {
	binds := []string{"/proc", "/dev", "/tmp"}
	if d, err := filepath.EvalSymlinks(os.TempDir()); err == nil && d != "/tmp" && !strings.HasPrefix(d, "/tmp/") {
		binds = append(binds, d)
	}
	return binds
}

// inRootfs runs "$@" chrooted into $1 as $2 (uid:gid, or "" for the current
// user) after binding each argument up to "--" at its own path; unshare gives
// it a private mount namespace, so nothing stays mounted in the rootfs.
const inRootfs = `root=$1 spec=$2; shift 2
while [ "$1" != -- ]; do mkdir -p "$root$1" && mount --rbind "$1" "$root$1" || exit 125; shift; done
shift
if [ -n "$spec" ]; then exec chroot --userspec="$spec" "$root" "$@"; fi
exec chroot "$root" "$@"`

// rootfsArgv is the argv that runs path (inside v.Root) with args.
func (v Version) rootfsArgv(asPG bool, path string, args []string) ([]string, error) {
	spec := ""
	if asPG {
		u, err := runAsUser()
		if err != nil {
			return nil, err
		}
		spec = fmt.Sprintf("%d:%d", u.uid, u.gid)
	}
	argv := []string{"/usr/bin/unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", inRootfs, "sh", v.Root, spec}
	argv = append(argv, rootfsBinds()...)
	argv = append(argv, "--", path)
	return append(argv, args...), nil
}
