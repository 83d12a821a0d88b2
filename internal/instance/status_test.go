package instance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestStatus: each arrangement of signal files gives its state, with what
// basebackup.signal records.
func TestStatus(t *testing.T) {
	failed := Pending{Recorded: true, Attempts: 2, LastError: "connection refused", LastFailure: time.Unix(1700000000, 0)}
	for _, tc := range []struct {
		name    string
		files   []string
		pending *Pending
		want    DirState
	}{
		{"missing", nil, nil, DirMissing},
		{"empty", []string{}, nil, DirOther},
		{"primary", []string{PgControl}, nil, DirOther},
		{"standby", []string{PgControl, StandbySignal}, nil, DirStandby},
		{"touched", []string{BackupSignal}, nil, DirNotStarted},
		{"failed before writing", []string{}, &failed, DirFailed},
		{"interrupted", []string{}, &Pending{Recorded: true, Attempts: 1, Written: true}, DirInterrupted},
		{"stopped before writing", []string{}, &Pending{Recorded: true, Attempts: 1}, DirNotStarted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if tc.files != nil {
				mkFiles(t, dir, tc.files...)
			}
			if tc.pending != nil {
				root, err := os.OpenRoot(dir)
				if err != nil {
					t.Fatal(err)
				}
				defer root.Close()
				if err := WritePending(root, *tc.pending, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			st := (&Instance{DataDir: dir}).Status()
			if st.State != tc.want || st.Err != nil {
				t.Fatalf("Status() = %+v, want state %d", st, tc.want)
			}
			if tc.pending != nil && (st.Pending.Attempts != tc.pending.Attempts || st.Pending.LastError != tc.pending.LastError || !st.Pending.LastFailure.Equal(tc.pending.LastFailure)) {
				t.Errorf("Status().Pending = %+v, want %+v", st.Pending, *tc.pending)
			}
		})
	}
	t.Run("unreadable record", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, BackupSignal), []byte("future-entry 1\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		st := (&Instance{DataDir: dir}).Status()
		if st.State != DirUnreadable || st.Err == nil || !strings.Contains(st.Err.Error(), `unknown entry "future-entry"`) {
			t.Fatalf("Status() = %+v, want unreadable with the entry named", st)
		}
	})
}

func mkFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFlockHolder: only a granted FLOCK on the same device and inode
// counts; waiters ("->"), POSIX locks and other inodes do not.
func TestFlockHolder(t *testing.T) {
	locks := `1: POSIX  ADVISORY  WRITE 900 08:02:131 0 EOF
2: FLOCK  ADVISORY  WRITE 1234 fd:01:131 0 EOF
2: -> FLOCK  ADVISORY  WRITE 1300 fd:01:131 0 EOF
3: FLOCK  ADVISORY  WRITE 4321 fd:01:132 0 EOF
4: FLOCK  ADVISORY  WRITE 77 103:1a:131 0 EOF
`
	for _, tc := range []struct {
		major, minor, ino uint64
		want              int
	}{
		{0xfd, 1, 131, 1234},
		{0xfd, 1, 132, 4321},
		{0x103, 0x1a, 131, 77},
		{8, 2, 131, 0}, // POSIX only
		{0xfd, 1, 133, 0},
	} {
		if got := flockHolder(locks, tc.major, tc.minor, tc.ino); got != tc.want {
			t.Errorf("flockHolder(%x:%x:%d) = %d, want %d", tc.major, tc.minor, tc.ino, got, tc.want)
		}
	}
}

// TestLockHolder: the pid /proc/locks shows for a held instance lock is ours.
func TestLockHolder(t *testing.T) {
	in := &Instance{DataDir: t.TempDir()}
	if pid := LockHolder(in.DataDir); pid != 0 {
		t.Fatalf("LockHolder before Lock = %d, want 0", pid)
	}
	l, err := in.Lock()
	if err != nil {
		t.Fatal(err)
	}
	if pid := LockHolder(in.DataDir); pid != os.Getpid() {
		t.Errorf("LockHolder = %d, want %d (this process)", pid, os.Getpid())
	}
	l.Release()
	if pid := LockHolder(in.DataDir); pid != 0 {
		t.Errorf("LockHolder after Release = %d, want 0", pid)
	}
}

// TestStatusCopy: a DirOther directory says which pg-standby backup it came
// from, read from backup_label (backup_label.old once postgres ran); another
// tool's label, none, or a FIFO in its place say nothing and never block.
func TestStatusCopy(t *testing.T) {
	label := func(l string) string {
		return "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000060\n" +
			"BACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-12-02 10:00:00 UTC\nLABEL: " + l + "\nSTART TIMELINE: 1\n"
	}
	for _, tc := range []struct {
		name, file, body string
		want             *Copy
	}{
		{"patroni-replica", "backup_label", label("pg-standby patroni-replica /d"),
			&Copy{Label: "pg-standby patroni-replica /d", Patroni: true, File: "backup_label", StartLSN: "0/2000028", StartTime: "2026-12-02 10:00:00 UTC", Timeline: "1"}},
		{"started since", "backup_label.old", label("pg-standby patroni-replica /d"),
			&Copy{Label: "pg-standby patroni-replica /d", Patroni: true, File: "backup_label.old", StartLSN: "0/2000028", StartTime: "2026-12-02 10:00:00 UTC", Timeline: "1"}},
		{"run", "backup_label", label("pg-standby /d"),
			&Copy{Label: "pg-standby /d", File: "backup_label", StartLSN: "0/2000028", StartTime: "2026-12-02 10:00:00 UTC", Timeline: "1"}},
		{"pg_basebackup", "backup_label", label("pg_basebackup base backup"), nil},
		{"no label", "", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mkFiles(t, dir, PgControl)
			if tc.file != "" {
				if err := os.WriteFile(filepath.Join(dir, tc.file), []byte(tc.body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			st := (&Instance{DataDir: dir}).Status()
			if st.State != DirOther || (st.Copy == nil) != (tc.want == nil) || (tc.want != nil && *st.Copy != *tc.want) {
				t.Errorf("Status() = state %d copy %+v, want DirOther, copy %+v", st.State, st.Copy, tc.want)
			}
		})
	}
	t.Run("fifo", func(t *testing.T) {
		dir := t.TempDir()
		if err := unix.Mkfifo(filepath.Join(dir, "backup_label"), 0o600); err != nil {
			t.Fatal(err)
		}
		if c, err := (&Instance{DataDir: dir}).CopyOf(); c != nil || err == nil {
			t.Errorf("CopyOf with a FIFO as backup_label = %+v, %v; want an error", c, err)
		}
	})
}
