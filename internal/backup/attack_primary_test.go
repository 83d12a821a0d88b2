package backup_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/basebackup"
	fp "github.com/pg-standby/pg-standby/internal/fakeprimary"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/pgconf"
	"github.com/pg-standby/pg-standby/internal/service"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// captureLog is a logger whose text output the test reads afterwards.
type captureLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
	t   *testing.T
}

func (c *captureLog) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t.Log(strings.TrimSuffix(string(p), "\n"))
	return c.buf.Write(p)
}

func (c *captureLog) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func newCaptureLog(t *testing.T) (*slog.Logger, *captureLog) {
	c := &captureLog{t: t}
	return slog.New(slog.NewTextHandler(c, &slog.HandlerOptions{Level: slog.LevelDebug})), c
}

// attackRun runs one attempt against a fake primary serving script (built
// from the layout), and returns the error.
func attackRun(t *testing.T, script func(l hostileLayout) fp.Script, opt backup.Options) (hostileLayout, *fp.Server, error) {
	t.Helper()
	l := newHostileLayout(t, "host=127.0.0.1 port=1")
	srv := fp.Start(t, script(l))
	writeFile(t, filepath.Join(l.data, "postgresql.conf"), "primary_conninfo = "+pgconf.Quote(srv.ConnString())+"\n")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opt.DataDir = l.data
	if opt.Log == nil {
		opt.Log = testLogger(t)
	}
	_, err := backup.Run(ctx, opt)
	return l, srv, err
}

func baseBackups(srv *fp.Server) int {
	n := 0
	for _, c := range srv.Commands() {
		if strings.HasPrefix(c, "BASE_BACKUP") {
			n++
		}
	}
	return n
}

// TestAttackStreamKinds: what breaks the archive or protocol rules is a
// Protocol failure (exit 76), never retried; a cut stream stays Transient.
func TestAttackStreamKinds(t *testing.T) {
	good := fp.Tar(goodBase(), false)
	man := fp.Manifest(goodManifest())
	evil := func(e fp.Entry) [][]byte {
		return fp.Archive("base.tar", "", fp.Tar(append(goodBase(), e), false), 4096)
	}
	huge := []byte{'d', 0x3e, 0x80, 0x00, 0x04, 'd'} // a CopyData announcing 1000 MiB
	for _, c := range []struct {
		name   string
		stream [][]byte
		cut    bool
		want   string
		kind   backup.Kind
		raw    []byte
	}{
		{"oversized message", fp.Archive("base.tar", "", good[:1024], 4096), false,
			"receive base backup stream: invalid body length: expected at most 16777216, but got 1048576000", backup.Protocol, huge},
		{"member leaving the directory", stream(evil(fp.Entry{Name: "../outside/evil", Data: "x"}), man), false,
			`tar archive: tar member "../outside/evil": path leaves the directory`, backup.Protocol, nil},
		{"symbolic link", stream(evil(fp.Entry{Name: "escape", Type: '2', Linkname: "/etc"}), man), false,
			`archive member "escape" is a symbolic link to "/etc": only pg_tblspc/<oid> links to known tablespaces are allowed`, backup.Protocol, nil},
		{"archive name", stream(fp.Archive("../base.tar", "", good, 4096), man), false,
			`base backup stream: unexpected archive "../base.tar" for the data directory (want base.tar)`, backup.Protocol, nil},
		{"out of order", stream(man, fp.Archive("base.tar", "", good, 4096)), false,
			`base backup stream: an archive after the manifest`, backup.Protocol, nil},
		{"malformed manifest", stream(fp.Archive("base.tar", "", good, 4096), fp.Manifest([]byte("{not json"))), false,
			"backup manifest from the primary: manifest:", backup.Protocol, nil},
		{"truncated archive", stream(fp.Archive("base.tar", "", good[:512*9+100], 4096), man), false,
			`tar archive truncated inside member "global/pg_control" (6556 bytes missing)`, backup.Transient, nil},
		{"connection cut", fp.Archive("base.tar", "", good[:512*9+100], 4096), true,
			"receive base backup stream: unexpected EOF", backup.Transient, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newHostileLayout(t, "host=127.0.0.1 port=1")
			srv := fp.Start(t, fp.Script{Stream: c.stream, Cut: c.cut, Raw: c.raw})
			writeFile(t, filepath.Join(l.data, "postgresql.conf"), "primary_conninfo = "+pgconf.Quote(srv.ConnString())+"\n")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := service.Run(ctx, service.Config{
				Backup: backup.Options{DataDir: l.data, Log: testLogger(t)}, Log: testLogger(t), Notify: nopNotifier{},
				Retries: 2, Backoff: 10 * time.Millisecond, MaxBackoff: 10 * time.Millisecond,
			})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if got := backup.KindOf(err); got != c.kind {
				t.Errorf("kind %s, want %s", got, c.kind)
			}
			want := 1
			if c.kind == backup.Transient {
				want = 3
			}
			if got := baseBackups(srv); got != want {
				t.Errorf("%d BASE_BACKUP commands, want %d (retried only when transient)", got, want)
			}
		})
	}
}

// TestAttackManifestOverBound: a manifest far larger than the files sent
// need (1 GiB of blanks) fails as a protocol violation after about 1 MiB,
// not at 1 GiB after gigabytes of memory.
func TestAttackManifestOverBound(t *testing.T) {
	chunk := append([]byte{'d'}, bytes.Repeat([]byte{' '}, 1<<20)...)
	blanks := [][]byte{fp.ManifestStart()}
	for range 1024 {
		blanks = append(blanks, chunk) // one shared buffer: the fake holds 1 MiB
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	_, srv, err := attackRun(t, func(hostileLayout) fp.Script {
		return fp.Script{Stream: stream(fp.Archive("base.tar", "", fp.Tar(goodBase(), false), 4096), blanks)}
	}, backup.Options{})
	runtime.ReadMemStats(&ms)
	// 4 files of 50 path bytes: 1 MiB + 4*512 + 6*50.
	want := "backup manifest from the primary: more than 1050924 bytes, more than any PostgreSQL server writes for the 4 files it sent: a broken or hostile server"
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
	if got := backup.KindOf(err); got != backup.Protocol {
		t.Errorf("kind %s, want protocol violation", got)
	}
	if got := baseBackups(srv); got != 1 {
		t.Errorf("%d BASE_BACKUP commands, want 1", got)
	}
	if n := ms.TotalAlloc - before; n > 64<<20 {
		t.Errorf("%d MiB allocated: the manifest is not bounded", n>>20)
	}
}

// TestAttackTablespaceLocation: a location the primary names in a system
// directory, with a hidden component, or holding the home directory is
// refused before anything is written; --tablespace-mapping may go anywhere.
func TestAttackTablespaceLocation(t *testing.T) {
	t.Setenv("HOME", os.Getenv("HOME")) // one case changes it; restored at the end
	const oid = 16385
	for _, c := range []struct {
		name     string
		location func(l hostileLayout) string
		want     func(l hostileLayout) string
	}{
		{"etc", func(hostileLayout) string { return "/etc/pg-standby-attack" }, func(hostileLayout) string {
			return "is in the system directory /etc"
		}},
		{"var lib dpkg", func(hostileLayout) string { return "/var/lib/dpkg/info/x" }, func(hostileLayout) string {
			return "is in the system directory /var/lib/dpkg"
		}},
		{"ssh in a home", func(l hostileLayout) string { return filepath.Join(l.ts, "home/.ssh") }, func(hostileLayout) string {
			return `has a hidden component ".ssh"`
		}},
		{"root directory", func(hostileLayout) string { return "/" }, func(hostileLayout) string { return "is the root directory" }},
		{"above the home directory", func(l hostileLayout) string {
			os.Setenv("HOME", filepath.Join(l.ts, "var/lib/postgresql")) // restored below
			return filepath.Join(l.ts, "var/lib")
		}, func(l hostileLayout) string {
			return "holds the home directory " + filepath.Join(l.ts, "var/lib/postgresql")
		}},
		{"through a link into /etc", func(l hostileLayout) string {
			if err := os.Symlink("/etc", filepath.Join(l.ts, "etc-link")); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(l.ts, "etc-link/pg-standby-attack")
		}, func(hostileLayout) string { return "is in the system directory /etc" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var loc string
			l, srv, err := attackRun(t, func(l hostileLayout) fp.Script {
				loc = c.location(l)
				return fp.Script{Tablespaces: []basebackup.Tablespace{{OID: oid, Location: loc, SizeKB: 1}}, Stream: stream(
					fp.Archive("16385.tar", loc, fp.Tar(nil, false), 4096),
					fp.Archive("base.tar", "", fp.Tar(goodBase(), false), 4096), fp.Manifest(goodManifest()))}
			}, backup.Options{})
			want := fmt.Sprintf("tablespace %d: the primary's location %s %s: pg-standby does not write there for the primary; "+
				"map it to a directory of your choice with --tablespace-mapping=%s=/new/location (or pg_standby.tablespace_mapping)",
				oid, loc, c.want(l), loc)
			if err == nil || err.Error() != want {
				t.Fatalf("error %v\nwant %q", err, want)
			}
			if got := backup.KindOf(err); got != backup.Refused {
				t.Errorf("kind %s, want refused", got)
			}
			if exists("/etc/pg-standby-attack") || exists(filepath.Join(l.ts, "home")) {
				t.Errorf("the location was created")
			}
			if p, err := instance.ReadPending(mustRoot(t, l.data)); err != nil || p.Recorded {
				t.Errorf("basebackup.signal written (%+v, %v): the refusal must come before any write", p, err)
			}
			_ = srv
			// The admin's mapping is allowed wherever it points.
			mapped := filepath.Join(l.ts, "mapped")
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := backup.Run(ctx, backup.Options{DataDir: l.data, Log: testLogger(t), TablespaceMapping: map[string]string{loc: mapped}}); err != nil {
				t.Fatalf("with --tablespace-mapping=%s=%s: %v", loc, mapped, err)
			}
			if got, err := os.Readlink(filepath.Join(l.data, "pg_tblspc/16385")); err != nil || got != mapped {
				t.Errorf("pg_tblspc/16385 -> %q (%v), want %s", got, err, mapped)
			}
		})
	}
}

func mustRoot(t *testing.T, dir string) *os.Root {
	t.Helper()
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// evilAutoConf is what a hostile primary's postgresql.auto.conf carries:
// every line but the first and the last must end up commented out.
const evilAutoConf = `# Do not edit this file manually!
include 'evil.conf'
include_if_exists 'evil.conf'
include_dir 'evil.d'
primary_conninfo = 'host=evil.example port=5432'
primary_slot_name = 'evil'
recovery_target = 'immediate'
recovery_target_action = 'promote'
recovery_min_apply_delay = '1d'
recovery_end_command = '/tmp/evil'
promote_trigger_file = '/tmp/promote'
restore_command = '/tmp/evil %f %p'
archive_command = '/tmp/evil %p'
archive_library = 'evil'
archive_cleanup_command = '/tmp/evil'
ssl_passphrase_command = '/tmp/evil'
shared_preload_libraries = 'pg_standby_no_such_library'
session_preload_libraries = 'evil'
local_preload_libraries = 'evil'
dynamic_library_path = '/tmp'
jit_provider = 'evil'
hba_file = '/tmp/evil_hba.conf'
ident_file = '/tmp/evil_ident.conf'
external_pid_file = '/etc/evil.pid'
log_directory = '/etc'
unix_socket_directories = '/etc'
ssl_cert_file = '/tmp/evil.crt'
pg_standby.tablespace_mapping = '/a=/etc/x'
work_mem = '8MB'
`

// TestAttackAutoConfFake: each forbidden setting of a copied
// postgresql.auto.conf is commented out before it is written, with one
// warning listing them; the manifest still verifies (it describes what the
// primary sent).
func TestAttackAutoConfFake(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep_primary_settings=%v", keep), func(t *testing.T) {
			files := append(append([]fp.ManifestFile(nil), goodFiles...), fp.ManifestFile{Path: "postgresql.auto.conf", Data: evilAutoConf})
			base := append(goodBase(), fp.Entry{Name: "postgresql.auto.conf", Data: evilAutoConf})
			log, logs := newCaptureLog(t)
			l := newHostileLayout(t, "host=127.0.0.1 port=1")
			srv := fp.Start(t, fp.Script{Stream: stream(fp.Archive("base.tar", "", fp.Tar(base, false), 7),
				fp.Manifest(fp.RenderManifest(files, 1, fp.DefaultStart, fp.DefaultEnd)))})
			conf := "primary_conninfo = " + pgconf.Quote(srv.ConnString()) + "\n"
			if keep {
				conf += "pg_standby.keep_primary_settings = on\n"
			}
			writeFile(t, filepath.Join(l.data, "postgresql.conf"), conf)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := backup.Run(ctx, backup.Options{DataDir: l.data, Log: log}); err != nil {
				t.Fatalf("backup: %v", err)
			}
			got, err := os.ReadFile(filepath.Join(l.data, "postgresql.auto.conf"))
			if err != nil {
				t.Fatal(err)
			}
			kept := map[string]bool{"# Do not edit this file manually!": true, "work_mem = '8MB'": true}
			if keep {
				for _, s := range []string{"restore_command", "archive_command", "archive_library", "archive_cleanup_command",
					"ssl_passphrase_command", "shared_preload_libraries", "session_preload_libraries", "local_preload_libraries",
					"dynamic_library_path", "jit_provider", "external_pid_file", "log_directory", "unix_socket_directories", "ssl_cert_file"} {
					for _, line := range strings.Split(evilAutoConf, "\n") {
						if strings.HasPrefix(line, s+" ") {
							kept[line] = true
						}
					}
				}
			}
			var disabled []string
			for i, line := range strings.Split(strings.TrimSuffix(evilAutoConf, "\n"), "\n") {
				want := line
				if !kept[line] {
					want = "# disabled by pg-standby (copied from the primary): " + line
					name, _, _ := strings.Cut(line, " ")
					disabled = append(disabled, fmt.Sprintf("%s (line %d)", name, i+1))
				}
				if gotLine := strings.Split(string(got), "\n")[i]; gotLine != want {
					t.Errorf("line %d: %q, want %q", i+1, gotLine, want)
				}
			}
			wantWarn := "disabled settings copied from the primary's postgresql.auto.conf: they would include files, redirect, stop " +
				"or promote recovery, replace this standby's own files, or run the primary's commands and libraries here; " +
				"set them in this instance's own configuration if it needs them (pg_standby.keep_primary_settings = on keeps commands, " +
				"libraries and file paths): " + strings.Join(disabled, ", ")
			if !strings.Contains(logs.String(), fmt.Sprintf("msg=%q", wantWarn)) {
				t.Errorf("no warning %q in the log", wantWarn)
			}
			if n := strings.Count(logs.String(), "disabled settings copied"); n != 1 {
				t.Errorf("%d warnings, want one", n)
			}
		})
	}
}

// TestAttackRetryReadsKeptConfig: once an attempt wrote, the retry reads the
// instance's configuration from the kept files only; a postgresql.auto.conf
// in the data directory (a failed attempt's copy of the primary's) cannot
// choose which server the retry copies.
func TestAttackRetryReadsKeptConfig(t *testing.T) {
	other := fp.Start(t, fp.Script{})
	_, srv, err := attackRun(t, func(l hostileLayout) fp.Script {
		root := mustRoot(t, l.data)
		if err := instance.WritePending(root, instance.Pending{Recorded: true, Keep: []string{"postgresql.conf"}, Attempts: 1}, 0o600); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(l.data, "postgresql.auto.conf"), "primary_conninfo = "+pgconf.Quote(other.ConnString())+"\n"+
			"pg_standby.tablespace_mapping = '/x=/etc/x'\n")
		return fp.Script{Stream: stream(fp.Archive("base.tar", "", fp.Tar(goodBase(), false), 4096), fp.Manifest(goodManifest()))}
	}, backup.Options{})
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if n := len(other.Commands()); n != 0 {
		t.Errorf("the server named by the copied postgresql.auto.conf got %d commands: %v", n, other.Commands())
	}
	if got := baseBackups(srv); got != 1 {
		t.Errorf("the instance's own primary got %d BASE_BACKUP, want 1", got)
	}
}

// TestAttackAutoConfRealPrimary: a PostgreSQL 15 primary whose
// postgresql.auto.conf (ALTER SYSTEM, and lines added by hand) would make
// the standby promote itself, follow another server, run commands or fail
// to start; the copy has every one commented out, and the standby starts,
// stays in recovery and replays.
func TestAttackAutoConfRealPrimary(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, _ testpg.Version) {
		testpg.Require(t)
		p := testpg.Start(t, testpg.Options{})
		for _, set := range []string{
			"restore_command = '/bin/false %f %p'", "archive_command = '/bin/false'", "archive_cleanup_command = '/bin/false'",
			"recovery_end_command = '/bin/false'", "recovery_target = 'immediate'", "recovery_target_action = 'promote'",
			"primary_conninfo = 'host=192.0.2.1 port=5432 connect_timeout=1'", "primary_slot_name = 'evil'",
			"shared_preload_libraries = 'pg_standby_no_such_library'", "dynamic_library_path = '/tmp'",
			"ssl_passphrase_command = '/bin/false'",
		} {
			p.SQL(t, "ALTER SYSTEM SET "+set)
		}
		auto := filepath.Join(p.DataDir, "postgresql.auto.conf")
		f, err := os.OpenFile(auto, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(f, "include 'evil.conf'\nhba_file = '/nonexistent/pg_hba.conf'\n")
		f.Close()
		writeFile(t, filepath.Join(p.DataDir, "evil.conf"), "recovery_target = 'immediate'\nrecovery_target_action = 'promote'\n")
		testpg.Chown(t, p.DataDir)
		primaryAuto, err := os.ReadFile(auto)
		if err != nil {
			t.Fatal(err)
		}

		dir := newInstance(t, p.ConnString(), "hot_standby = on")
		log, logs := newCaptureLog(t)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if _, err := backup.Run(ctx, backup.Options{DataDir: dir, Log: log}); err != nil {
			t.Fatalf("backup: %v", err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "postgresql.auto.conf"))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("the copy's postgresql.auto.conf:\n%s", got)
		gotLines := strings.Split(string(got), "\n")
		var disabled []string
		for i, line := range strings.Split(strings.TrimSuffix(string(primaryAuto), "\n"), "\n") {
			want := line
			if line != "" && !strings.HasPrefix(line, "#") {
				want = "# disabled by pg-standby (copied from the primary): " + line
				name, _, _ := strings.Cut(line, " ")
				disabled = append(disabled, fmt.Sprintf("%s (line %d)", name, i+1))
			}
			if i >= len(gotLines) || gotLines[i] != want {
				t.Errorf("line %d of the copy: want %q", i+1, want)
			}
		}
		if len(disabled) != 13 {
			t.Errorf("%d settings disabled, want 13: %v", len(disabled), disabled)
		}
		if !strings.Contains(logs.String(), "libraries and file paths): "+strings.Join(disabled, ", ")+`"`) {
			t.Errorf("no warning listing %v", disabled)
		}
		p.SQL(t, "CREATE TABLE after_backup AS SELECT 'marker' AS x")
		s := testpg.StartStandby(t, dir)
		s.WaitFor(t, "SELECT x FROM after_backup", "marker", time.Minute)
		if got := s.SQL(t, "SELECT pg_is_in_recovery()"); got != "t" {
			t.Errorf("standby pg_is_in_recovery = %s: it promoted itself", got)
		}
		for name, want := range map[string]string{"shared_preload_libraries": "", "restore_command": "", "recovery_target_action": "pause"} {
			if got := s.SQL(t, "SHOW "+name); got != want {
				t.Errorf("standby: %s = %q, want %q", name, got, want)
			}
		}
	})
}

// TestAttackTablespaceHiddenRealPrimary: a tablespace the primary keeps in
// a hidden directory (as ~postgres/.ssh would be) is refused before any
// write; mapped with --tablespace-mapping it is copied.
func TestAttackTablespaceHiddenRealPrimary(t *testing.T) {
	testpg.Require(t)
	p := testpg.Start(t, testpg.Options{})
	loc := filepath.Join(testpg.TempDir(t), ".ssh")
	if err := os.Mkdir(loc, 0o700); err != nil {
		t.Fatal(err)
	}
	testpg.Chown(t, loc)
	p.SQL(t, "CREATE TABLESPACE hidden LOCATION '"+loc+"'")
	p.SQL(t, "CREATE TABLE in_hidden TABLESPACE hidden AS SELECT 'h' AS x")
	oid := p.SQL(t, "SELECT oid FROM pg_tablespace WHERE spcname = 'hidden'")
	dir := newInstance(t, p.ConnString())
	_, err := run(t, backup.Options{DataDir: dir})
	want := fmt.Sprintf(`tablespace %s: the primary's location %s has a hidden component ".ssh": pg-standby does not write there for the primary; `+
		"map it to a directory of your choice with --tablespace-mapping=%s=/new/location (or pg_standby.tablespace_mapping)", oid, loc, loc)
	if err == nil || err.Error() != want {
		t.Fatalf("error %v\nwant %q", err, want)
	}
	if got := backup.KindOf(err); got != backup.Refused {
		t.Errorf("kind %s, want refused", got)
	}
	if pend, err := instance.ReadPending(mustRoot(t, dir)); err != nil || pend.Recorded || exists(filepath.Join(dir, "pg_tblspc")) {
		t.Errorf("written before the refusal: %+v %v", pend, err)
	}
	mapped := newLocation(t)
	if _, err := run(t, backup.Options{DataDir: dir, TablespaceMapping: map[string]string{loc: mapped}}); err != nil {
		t.Fatalf("with --tablespace-mapping: %v", err)
	}
	s := testpg.StartStandby(t, dir)
	if got := s.SQL(t, "SELECT x FROM in_hidden"); got != "h" {
		t.Errorf("in_hidden on the standby = %q", got)
	}
}

// TestAttackKeptIncludeDir: a file the primary adds to a directory of the
// instance's own configuration (an include_dir in the data directory) is
// not written: postgres would read it as the instance's own.
func TestAttackKeptIncludeDir(t *testing.T) {
	evil := "recovery_target = 'immediate'\nrecovery_target_action = 'promote'\n"
	files := append(append([]fp.ManifestFile(nil), goodFiles...),
		fp.ManifestFile{Path: "conf.d/own.conf", Data: "work_mem = '4MB'\n"}, fp.ManifestFile{Path: "conf.d/evil.conf", Data: evil})
	base := append(goodBase(), fp.Entry{Name: "conf.d/", Type: '5'},
		fp.Entry{Name: "conf.d/own.conf", Data: "work_mem = '4MB'\n"}, fp.Entry{Name: "conf.d/evil.conf", Data: evil})
	l := newHostileLayout(t, "host=127.0.0.1 port=1")
	srv := fp.Start(t, fp.Script{Stream: stream(fp.Archive("base.tar", "", fp.Tar(base, false), 4096),
		fp.Manifest(fp.RenderManifest(files, 1, fp.DefaultStart, fp.DefaultEnd)))})
	if err := os.Mkdir(filepath.Join(l.data, "conf.d"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(l.data, "conf.d/own.conf"), "work_mem = '8MB'\n")
	writeFile(t, filepath.Join(l.data, "postgresql.conf"), "primary_conninfo = "+pgconf.Quote(srv.ConnString())+"\ninclude_dir 'conf.d'\n")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := backup.Run(ctx, backup.Options{DataDir: l.data, Log: testLogger(t)}); err != nil {
		t.Fatalf("backup: %v", err)
	}
	if exists(filepath.Join(l.data, "conf.d/evil.conf")) {
		t.Errorf("the primary's conf.d/evil.conf was written into the instance's include_dir")
	}
	if got, _ := os.ReadFile(filepath.Join(l.data, "conf.d/own.conf")); string(got) != "work_mem = '8MB'\n" {
		t.Errorf("conf.d/own.conf = %q: the instance's own file was replaced", got)
	}
}
