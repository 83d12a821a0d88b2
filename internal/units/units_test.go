// Package units tests the systemd unit files in systemd/ at the top of the
// repository: their key settings as text, then systemd's own view of them
// (systemd-analyze verify, and the exposure score of systemd-analyze
// security --offline for the backup unit).
//
// Without systemd-analyze the systemd tests skip, except under CI=true where
// they fail: CI installs systemd.
package units

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/unit"
)

// unitDir is the repository's systemd/ directory, seen from this package.
const unitDir = "../../systemd"

// binary is the command every unit runs; staged copies point to a stub.
const binary = "/usr/bin/pg-standby"

// debianUnit is Debian's own template for postgres clusters, which our
// drop-in extends.
const debianUnit = "/lib/systemd/system/postgresql@.service"

// maxExposure is the highest overall exposure systemd-analyze security may
// give the backup unit (0 is best, 10 worst).
const maxExposure = 3.0

// Instances of both kinds: a Debian cluster name and a systemd-escaped data
// directory (systemd-escape --path /srv/pg/standby).
const (
	debianInstance = "15-main"
	pathInstance   = "srv-pg-standby"
)

// parseUnit reads the settings of a unit file, in order, as systemd does
// (go-systemd's deserializer: comments dropped, continuation lines joined).
func parseUnit(t *testing.T, name string) []*unit.UnitOption {
	t.Helper()
	f, err := os.Open(filepath.Join(unitDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	opts, err := unit.DeserializeOptions(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return opts
}

// values returns every value of section/key, in order.
func values(opts []*unit.UnitOption, section, key string) []string {
	var vs []string
	for _, o := range opts {
		if o.Section == section && o.Name == key {
			vs = append(vs, o.Value)
		}
	}
	return vs
}

// TestSettings checks, as text, the settings the design rests on (see
// systemd/README.md). It needs no systemd.
func TestSettings(t *testing.T) {
	tests := []struct {
		file, section, key string
		want               []string
	}{
		// Backup unit.
		{"pg-standby@.service", "Service", "Type", []string{"notify"}},
		{"pg-standby@.service", "Service", "NotifyAccess", []string{"main"}},
		{"pg-standby@.service", "Service", "User", []string{"postgres"}},
		{"pg-standby@.service", "Service", "ExecStart", []string{binary + " run %i"}},
		// OnSuccess= survives Restart=; Requires=/After= do not.
		{"pg-standby@.service", "Unit", "OnSuccess", []string{"postgresql@%i.service pg-standby-postgres@%i.service"}},
		{"pg-standby@.service", "Unit", "Requires", nil},
		{"pg-standby@.service", "Service", "Restart", []string{"on-failure"}},
		// The bound on retrying an unreachable primary (README "Retries").
		{"pg-standby@.service", "Unit", "StartLimitIntervalSec", []string{"30min"}},
		{"pg-standby@.service", "Unit", "StartLimitBurst", []string{"5"}},
		// Exit statuses 2 (usage), 65 (corrupt), 76 (protocol), 77 (refused), 78 (configuration),
		// 80 (Cancel() on D-Bus).
		{"pg-standby@.service", "Service", "RestartPreventExitStatus", []string{"2 65 76 77 78 80"}},
		// A stop by SIGTERM or Cancel() leaves the note for postgres' guard.
		{"pg-standby@.service", "Service", "ExecStopPost", []string{`+/bin/sh -c 'case "$$EXIT_CODE/$$EXIT_STATUS" in killed/TERM|exited/80) mkdir -p /run/pg-standby && touch "/run/pg-standby/%i.stopped";; esac'`}},
		{"pg-standby@.service", "Service", "ReadWritePaths", []string{"/var/lib/postgresql", "-%f"}},
		// It would remove a running postgres' shared memory.
		{"pg-standby@.service", "Service", "RemoveIPC", nil},
		// The primary may be anywhere.
		{"pg-standby@.service", "Service", "IPAddressDeny", nil},
		{"pg-standby@.service", "Service", "BusName", nil},
		{"pg-standby@.service", "Service", "PrivateUsers", []string{"yes"}},
		// The note an admin's stop leaves for postgres' ExecCondition=.
		{"pg-standby@.service", "Service", "ExecStartPre", []string{"+/bin/rm -f /run/pg-standby/%i.stopped"}},
		// Drop-in for Debian's postgres.
		{"postgresql@.service.d/pg-standby.conf", "Service", "ExecCondition", []string{"+" + binary + " condition %i"}},
		{"postgresql@.service.d/pg-standby.conf", "Unit", "ConditionPathExists", []string{"!%f"}},
		// Postgres for path instances.
		{"pg-standby-postgres@.service", "Service", "Type", []string{"notify"}},
		{"pg-standby-postgres@.service", "Service", "User", []string{"postgres"}},
		{"pg-standby-postgres@.service", "Service", "ExecCondition", []string{"+" + binary + " condition %i"}},
		{"pg-standby-postgres@.service", "Service", "ExecStart", []string{binary + " postgres %i"}},
		{"pg-standby-postgres@.service", "Service", "KillMode", []string{"mixed"}},
		{"pg-standby-postgres@.service", "Service", "KillSignal", []string{"SIGINT"}},
		{"pg-standby-postgres@.service", "Unit", "ConditionPathIsDirectory", []string{"%f"}},
	}
	parsed := map[string][]*unit.UnitOption{}
	for _, tt := range tests {
		if _, ok := parsed[tt.file]; !ok {
			parsed[tt.file] = parseUnit(t, tt.file)
		}
		got := values(parsed[tt.file], tt.section, tt.key)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s [%s] %s=: got %q, want %q", tt.file, tt.section, tt.key, got, tt.want)
		}
	}
}

// analyze returns the path of systemd-analyze, new enough for
// "security --offline" (systemd 250). Without it the test skips, or fails
// under CI=true.
func analyze(t *testing.T) string {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf(format+" (CI=true: CI must install systemd)", args...)
		}
		t.Skipf(format, args...)
	}
	path, err := exec.LookPath("systemd-analyze")
	if err != nil {
		missing("systemd-analyze not found: %v", err)
	}
	out, err := exec.Command(path, "--version").Output()
	if err != nil {
		missing("%s --version: %v", path, err)
	}
	m := regexp.MustCompile(`^systemd (\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("%s --version: got %q, want \"systemd N ...\"", path, out)
	}
	if v, _ := strconv.Atoi(string(m[1])); v < 250 {
		missing("systemd %d: security --offline needs 250 or later", v)
	}
	return path
}

// stage copies the units into a fresh directory, as systemd-analyze loads
// them (it searches the directory of the units it is given, then the
// system's unit directories), with the binary replaced by an executable
// stub, since verify checks that commands exist. The drop-in is attached to
// a copy of Debian's postgresql@.service, or to a stand-in where Debian's unit
// is not installed.
func stage(t *testing.T) string {
	t.Helper()
	// Not t.TempDir: its name carries the test's name, and the directory
	// must not contain "pg-standby" (see verifyLineOK).
	dir, err := os.MkdirTemp("", "units")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	stub := filepath.Join(dir, "bin", "stub")
	if err := os.MkdirAll(filepath.Dir(stub), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stub, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"pg-standby@.service",
		"pg-standby-postgres@.service",
		"pg-standby-metrics@.service",
		"pg-standby-metrics@.timer",
		"postgresql@.service.d/pg-standby.conf",
	} {
		b, err := os.ReadFile(filepath.Join(unitDir, name))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name), bytes.ReplaceAll(b, []byte(binary), []byte(stub)))
	}
	debian, err := os.ReadFile(debianUnit)
	if err != nil {
		t.Logf("%v: verifying the drop-in on a stand-in", err)
		debian = []byte("[Unit]\nDescription=stand-in for Debian's postgresql@.service\n" +
			"[Service]\nType=forking\nExecStart=" + stub + " %i\n")
	}
	writeFile(t, filepath.Join(dir, "postgresql@.service"), debian)
	return dir
}

func writeFile(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// run runs systemd-analyze without pager or colours and returns its
// combined output.
func run(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(analyze(t), args...)
	cmd.Env = append(os.Environ(), "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0", "SYSTEMD_LOG_COLOR=0")
	return cmd.CombinedOutput()
}

// TestVerify runs systemd-analyze verify on an instance of each kind of every
// unit we ship. Any message fails the test, except one about Debian's own
// postgresql@.service file: that file is not ours.
func TestVerify(t *testing.T) {
	analyze(t)
	dir := stage(t)
	for _, unit := range []string{
		"pg-standby@" + debianInstance + ".service",
		"pg-standby@" + pathInstance + ".service",
		"pg-standby-postgres@" + pathInstance + ".service",
		"pg-standby-metrics@" + debianInstance + ".timer",
		"pg-standby-metrics@" + pathInstance + ".service",
		// Debian's unit with our drop-in.
		"postgresql@" + debianInstance + ".service",
	} {
		t.Run(unit, func(t *testing.T) {
			// --man=no: pg-standby(8) is not installed where tests run.
			out, err := run(t, "verify", "--man=no", filepath.Join(dir, unit))
			t.Logf("systemd-analyze verify %s: %v\n%s", unit, exitStatus(err), out)
			if err != nil {
				t.Errorf("verify %s: got %v, want exit status 0", unit, err)
			}
			for line := range strings.Lines(string(out)) {
				line = strings.TrimSpace(line)
				if line != "" && !verifyLineOK(dir, line) {
					t.Errorf("verify %s: got message %q, want none", unit, line)
				}
			}
		})
	}
}

// verifyLineOK reports whether a message of systemd-analyze verify is about
// Debian's own unit file rather than ours.
func verifyLineOK(dir, line string) bool {
	return strings.HasPrefix(line, filepath.Join(dir, "postgresql@.service")+":") &&
		!strings.Contains(line, "pg-standby")
}

func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// TestSecurity measures the backup unit's exposure with systemd-analyze
// security --offline=true; systemd/README.md records the figure.
func TestSecurity(t *testing.T) {
	analyze(t)
	dir := stage(t)
	overall := regexp.MustCompile(`Overall exposure level for \S+: (\d+\.\d+)`)
	for _, inst := range []string{debianInstance, pathInstance} {
		unit := "pg-standby@" + inst + ".service"
		t.Run(unit, func(t *testing.T) {
			out, err := run(t, "security", "--offline=true", "--no-pager", filepath.Join(dir, unit))
			if err != nil {
				t.Fatalf("systemd-analyze security %s: %v\n%s", unit, err, out)
			}
			m := overall.FindSubmatch(out)
			if m == nil {
				t.Fatalf("systemd-analyze security %s: no overall exposure in\n%s", unit, out)
			}
			got, err := strconv.ParseFloat(string(m[1]), 64)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: overall exposure %.1f", unit, got)
			if got > maxExposure {
				t.Errorf("%s: got exposure %.1f, want at most %.1f\n%s", unit, got, maxExposure, out)
			}
			// What remains exposed, for the record.
			for line := range strings.Lines(string(out)) {
				if strings.HasPrefix(line, "✗") {
					t.Log(strings.TrimSpace(line))
				}
			}
		})
	}
}
