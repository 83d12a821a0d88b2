package manifest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/testpg"
	"github.com/pg-standby/pg-standby/internal/wal"
)

// pgServer is a throw-away PostgreSQL cluster listening only on a socket
// in a private directory.
type pgServer struct {
	t      *testing.T
	v      testpg.Version
	dir    string // everything lives under here
	sock   string
	asRoot bool // run programs through runuser as postgres
	uid    int  // owner for files the test creates
	gid    int
}

func (s *pgServer) run(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// As postgres when root, in the version's rootfs if it has one.
	cmd, err := s.v.PGCommand(ctx, name, args...)
	if err != nil {
		return nil, err
	}
	cmd.Env = append(cmd.Env, "PGAPPNAME=manifest-oracle")
	return cmd.CombinedOutput()
}

func (s *pgServer) must(name string, args ...string) {
	s.t.Helper()
	if out, err := s.run(name, args...); err != nil {
		s.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// own gives a path the test created to the server's user.
func (s *pgServer) own(path string) {
	s.t.Helper()
	if s.asRoot {
		if err := os.Chown(path, s.uid, s.gid); err != nil {
			s.t.Fatal(err)
		}
	}
}

// startServer runs initdb and starts a server of version v, or skips the
// test when v cannot run here (testpg.Version.Skip). The server is always
// stopped, and the directory removed, when the test ends.
func startServer(t *testing.T, v testpg.Version) *pgServer {
	v.Skip(t) // under -short too
	s := &pgServer{t: t, v: v, asRoot: os.Geteuid() == 0}
	if s.asRoot {
		// The server refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skipf("running as root and no postgres user: %v", err)
		}
		s.uid, _ = strconv.Atoi(u.Uid)
		s.gid, _ = strconv.Atoi(u.Gid)
	}
	dir, err := os.MkdirTemp("", "manifest-oracle-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s.dir = dir
	s.own(dir)
	s.sock = filepath.Join(dir, "sock")
	for _, d := range []string{s.sock, filepath.Join(dir, "ts")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		s.own(d)
	}

	data := filepath.Join(dir, "data")
	s.must("initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
	// A file whose name is not UTF-8: the server lists it as Encoded-Path.
	odd := filepath.Join(data, "odd-\xff")
	if err := os.WriteFile(odd, []byte("not UTF-8\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.own(odd)

	logFile := filepath.Join(dir, "server.log")
	t.Cleanup(func() {
		if out, err := s.run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"); err != nil {
			t.Logf("pg_ctl stop: %v\n%s", err, out)
		}
	})
	opts := "-k '" + s.sock + "' -p 5432 -c listen_addresses='' -c fsync=off"
	if out, err := s.run("pg_ctl", "-D", data, "-w", "-t", "60", "-l", logFile, "-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(logFile)
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	s.must("psql", "-X", "-q", "-h", s.sock, "-p", "5432", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1",
		"-c", "CREATE TABLESPACE ts LOCATION '"+filepath.Join(dir, "ts")+"'",
		"-c", "CREATE TABLE t TABLESPACE ts AS SELECT generate_series(1, 1000) AS i")
	return s
}

// TestOracleServerManifest parses manifests written by a real server of each
// version and verifies the backup pg_basebackup wrote next to them: the
// server's CRC-32C and SHA-256 values must match what NewHash computes,
// Encoded-Path and tablespace paths must decode to the files' paths, the WAL
// range must start where backup_label says, and from 17 on the manifest is
// version 2 with the server's System-Identifier.
func TestOracleServerManifest(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) { oracleServerManifest(t, v) })
}

func oracleServerManifest(t *testing.T, v testpg.Version) {
	s := startServer(t, v)
	out, err := s.run("psql", "-X", "-At", "-h", s.sock, "-p", "5432", "-U", "postgres", "-d", "postgres",
		"-c", "SELECT system_identifier FROM pg_control_system()")
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, out)
	}
	sysid := strings.TrimSpace(string(out))
	for _, tc := range []struct {
		alg Algorithm
		wal string // pg_basebackup -X
	}{
		{CRC32C, "none"},  // as pg-standby does: WAL streamed separately
		{SHA256, "fetch"}, // WAL in the backup: not in the manifest
	} {
		t.Run(tc.alg.String(), func(t *testing.T) {
			bb := filepath.Join(s.dir, "bb-"+tc.alg.String())
			ts := filepath.Join(s.dir, "ts-"+tc.alg.String())
			s.must("pg_basebackup", "-h", s.sock, "-p", "5432", "-U", "postgres", "-D", bb, "-Fp",
				"-X", tc.wal, "-c", "fast", "--no-sync", "--manifest-checksums="+tc.alg.String(),
				"-T", filepath.Join(s.dir, "ts")+"="+ts)

			raw, err := os.ReadFile(filepath.Join(bb, "backup_manifest"))
			if err != nil {
				t.Fatal(err)
			}
			m, err := Parse(raw)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			// Version 2 (PostgreSQL 17) added System-Identifier.
			wantVer, wantSys := 1, "0"
			if v.Major >= 17 {
				wantVer, wantSys = 2, sysid
			}
			if m.Version != wantVer || strconv.FormatUint(m.SystemIdentifier, 10) != wantSys {
				t.Errorf("PostgreSQL %d manifest: version %d, system identifier %d; want %d, %s (pg_control_system)",
					v.Major, m.Version, m.SystemIdentifier, wantVer, wantSys)
			}
			if !bytes.Contains(raw, []byte(`"Encoded-Path"`)) {
				t.Error("no Encoded-Path in the manifest")
			}
			var odd, tblspc bool
			for _, f := range m.Files {
				if f.Algorithm != tc.alg {
					t.Fatalf("%q: algorithm %v", f.Path, f.Algorithm)
				}
				odd = odd || f.Path == "odd-\xff"
				tblspc = tblspc || strings.HasPrefix(f.Path, "pg_tblspc/")
				if dir, _, ok := strings.Cut(f.Path, "/"); ok && dir == "pg_wal" && !strings.HasPrefix(f.Path, "pg_wal/archive_status/") {
					t.Errorf("WAL file %q in the manifest", f.Path)
				}
			}
			if !odd || !tblspc {
				t.Errorf("odd path found: %v, tablespace path found: %v", odd, tblspc)
			}

			label, err := os.ReadFile(filepath.Join(bb, "backup_label"))
			if err != nil {
				t.Fatal(err)
			}
			start := regexp.MustCompile(`(?m)^START WAL LOCATION: (\S+) `).FindSubmatch(label)
			if start == nil {
				t.Fatalf("no START WAL LOCATION in backup_label:\n%s", label)
			}
			// LSNs are compared parsed, never as text (19 zero-pads them).
			labelStart, err := wal.ParseLSN(string(start[1]))
			if err != nil {
				t.Fatalf("backup_label: %v", err)
			}
			if len(m.WALRanges) != 1 || m.WALRanges[0].Timeline != 1 || m.WALRanges[0].Start != labelStart {
				t.Errorf("WAL-Ranges %+v, backup_label starts at %s", m.WALRanges, start[1])
			}

			observed := walkBackup(t, bb, tc.alg)
			if err := Verify(m, observed, nil); err != nil {
				t.Fatalf("Verify: %v", err)
			}

			// A wrong byte and a lost file are caught.
			o := observed["PG_VERSION"]
			o.Checksum = append([]byte(nil), o.Checksum...)
			o.Checksum[0] ^= 1
			observed["PG_VERSION"] = o
			delete(observed, "global/pg_control")
			var mm *Mismatch
			if err := Verify(m, observed, nil); !errors.As(err, &mm) || len(mm.WrongChecksum) != 1 || len(mm.Missing) != 1 {
				t.Errorf("Verify after damage = %v", err)
			}
			// So is a damaged manifest.
			raw[len(raw)/2] ^= 1
			if _, err := Parse(raw); err == nil {
				t.Error("Parse accepted a damaged manifest")
			}
		})
	}
}

// walkBackup is what a writer would have observed writing the plain-format
// backup at root: every regular file, except backup_manifest and WAL
// segments, with its size and alg checksum. Tablespace symlinks under
// pg_tblspc are followed.
func walkBackup(t *testing.T, root string, alg Algorithm) map[string]Observed {
	t.Helper()
	out := make(map[string]Observed)
	var walk func(dir, rel string)
	walk = func(dir, rel string) {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			full := filepath.Join(dir, e.Name())
			r := e.Name()
			if rel != "" {
				r = rel + "/" + r
			}
			fi, err := os.Stat(full) // follows tablespace symlinks
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case fi.IsDir():
				walk(full, r)
			case !fi.Mode().IsRegular(), r == "backup_manifest", rel == "pg_wal":
			default:
				f, err := os.Open(full)
				if err != nil {
					t.Fatal(err)
				}
				h := alg.NewHash()
				n, err := io.Copy(h, f)
				f.Close()
				if err != nil {
					t.Fatal(err)
				}
				out[r] = Observed{Size: n, Checksum: h.Sum(nil)}
			}
		}
	}
	walk(root, "")
	return out
}
