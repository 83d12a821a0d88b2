package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/faultproxy"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/oracle"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// TestKillDuringReconstruction kills (SIGKILL) a resuming attempt at the two
// points after the copy that issue 15 names. The first attempt is killed
// once a table's file is recorded complete; the table is updated; the
// resuming attempt is stalled by the fault proxy at a point of its stream
// found by content, and killed there:
//
//   - reconstructing: inside that table's INCREMENTAL member, once blocks of
//     the file have changed on disk. The update changes more blocks than
//     the stage holds in memory (heldBytes), so they are written as they
//     come. The journal must already have unlisted the file (a durable
//     Forget before the first byte changes) and must not list it after the
//     kill.
//   - held: the same point of a smaller increment, which the stage holds in
//     memory for its group's one Forget: the kill must find the file as it
//     was (whatever the journal says of it, its bytes are the listed ones).
//   - before pg_control: just before the manifest, once the archive's last
//     member (pg_control, diverted) has arrived, so every INCREMENTAL member
//     has been reconstructed and pg_control is not in place.
//
// Each time the next run finishes, and the oracles pass.
func TestKillDuringReconstruction(t *testing.T) {
	waiting(t)
	testpg.ForEachVersion(t, func(t *testing.T, v testpg.Version) {
		waiting(t)
		p := incrementalPrimary(t, v, nil)
		tables := loadTables(t, p, "kd", 4)
		// Hint bits set now: with data checksums the first scan after the
		// load logs every page (a full-page image per hint), and the update
		// between the attempts would change every block of kd_0.
		p.SQL(t, "VACUUM")
		proxy, err := faultproxy.Start(fmt.Sprintf("127.0.0.1:%d", p.Port))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { proxy.Close() })
		// sslmode=disable: one TCP connection per pgconn connection, so the
		// proxy's Conn 0 is the archive's.
		conninfo := fmt.Sprintf("host=127.0.0.1 port=%d user=replicator password=%s dbname=postgres sslmode=disable connect_timeout=10", proxy.Port, p.Password)
		rel := p.SQL(t, "SELECT pg_relation_filepath('kd_0')")
		size, _ := strconv.ParseInt(p.SQL(t, "SELECT pg_relation_size('kd_0')"), 10, 64)
		incName := filepath.Dir(rel) + "/INCREMENTAL." + filepath.Base(rel)
		var stalledAt time.Time // the held case's: when its stall was first seen

		for i, c := range []struct {
			name      string
			every     int    // the update between the attempts: one row in every
			pattern   string // in the resuming attempt's stream: stall after bytes past it
			after     int64
			torn      bool                                  // the kill leaves kd_0's file torn
			untouched bool                                  // the kill leaves kd_0's file as it was
			ready     func(dir string, prior [32]byte) bool // the moment to kill
		}{
			{
				// One row in 400: about 375 blocks, held. The stage has
				// taken the bytes before the stall within a second.
				name: "held", every: 400, pattern: incName + "\x00", after: 512 + 8192 + 64*8192, untouched: true,
				ready: func(string, [32]byte) bool {
					if stalledAt.IsZero() {
						stalledAt = time.Now()
					}
					return time.Since(stalledAt) > time.Second
				},
			},
			{
				// Past the tar header and the increment's header (padded to
				// a block): 64 blocks into the member's block data. One row
				// in 100 is on about 81 % of the table's ~1,850 blocks (81
				// rows a block): more than the 1,024 of heldBytes, less
				// than the 90 % past which the server sends the file whole.
				name: "reconstructing", every: 100, pattern: incName + "\x00", after: 512 + 8192 + 64*8192, torn: true,
				ready: func(dir string, prior [32]byte) bool {
					changed := prefixHash(t, filepath.Join(dir, rel), size) != prior
					if changed {
						if _, listed := oracle.Journal(t, dir)[rel]; listed {
							t.Fatalf("%s changed on disk while the journal still lists it complete", rel)
						}
					}
					return changed
				},
			},
			{
				name: "before pg_control", every: 400, pattern: `"PostgreSQL-Backup-Manifest-Version"`,
				ready: func(dir string, prior [32]byte) bool {
					return exists(filepath.Join(dir, instance.PgControlPending)) && prefixHash(t, filepath.Join(dir, rel), size) != prior
				},
			},
		} {
			t.Run(c.name, func(t *testing.T) {
				dir := initInstanceConn(t, conninfo)
				// The first attempt: killed once kd_0's file is complete in
				// the journal (the stall keeps the copy just past it: its
				// bytes, and the CopyData framing, 6 bytes a message of
				// at least a block).
				killAt(t, proxy, dir, faultproxy.Fault{Pattern: []byte(rel + "\x00"), After: size + size/1000 + 64<<10}, func() bool {
					e, ok := oracle.Journal(t, dir)[rel]
					return ok && e.Size == size
				})
				p.SQL(t, fmt.Sprintf("UPDATE kd_0 SET pad = 'changed %d' WHERE g %% %d = %d", i, c.every, i))
				p.SQL(t, fmt.Sprintf("CREATE TABLE kd_new_%d AS SELECT g FROM generate_series(1, 1000) g", i))
				prior := prefixHash(t, filepath.Join(dir, rel), size)

				killAt(t, proxy, dir, faultproxy.Fault{Pattern: []byte(c.pattern), After: c.after}, func() bool { return c.ready(dir, prior) })
				if _, listed := oracle.Journal(t, dir)[rel]; listed && c.torn {
					t.Errorf("after the kill the journal lists the half-reconstructed %s as complete", rel)
				}
				if c.untouched && prefixHash(t, filepath.Join(dir, rel), size) != prior {
					t.Errorf("after the kill %s is not as it was: a held change reached it before its Forget", rel)
				}
				oracle.FailedAttempt(t, dir)

				proxy.Disarm()
				code, out := runWorker(t, "run", "--pgdata", dir)
				if code != 0 {
					t.Fatalf("rerun: status %d\n%s", code, out)
				}
				received, reused := resumedBytes(t, out)
				t.Logf("PostgreSQL %d, killed %s: the rerun received %d bytes and reused %d", v.Major, c.name, received, reused)
				s := oracle.Standby(t, p, dir, append(tables, fmt.Sprintf("kd_new_%d", i))...)
				s.Stop(t)
			})
		}
	})
}

// killAt runs the worker on dir with the fault armed on the archive's
// connection (a stall), and SIGKILLs it once the fault struck and ready
// reports true.
func killAt(t *testing.T, proxy *faultproxy.Proxy, dir string, f faultproxy.Fault, ready func() bool) {
	t.Helper()
	f.Conn, f.Dir, f.Action = 0, faultproxy.ToClient, faultproxy.Stall
	proxy.Arm(f)
	w := startWorker(t, nil, "run", "--pgdata", dir)
	exited := make(chan struct{})
	go func() { w.cmd.Wait(); close(exited) }()
	defer func() { w.cmd.Process.Kill(); <-exited }() // also when the test fails here
	deadline := time.After(2 * time.Minute)
	for len(proxy.Fired()) == 0 || !ready() {
		select {
		case <-exited:
			t.Fatalf("the worker ended before the kill (stall struck: %v)\n%s", len(proxy.Fired()) > 0, w.output.String())
		case <-deadline:
			t.Fatalf("no moment to kill within 2 minutes (stall struck: %v)\n%s", len(proxy.Fired()) > 0, w.output.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	w.cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	if ws := w.cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the worker ended with %v, not by the kill\n%s", w.cmd.ProcessState, w.output.String())
	}
	t.Logf("killed at %q + %d bytes", f.Pattern, f.After)
}

// prefixHash is the SHA-256 of the first n bytes of the file.
func prefixHash(t *testing.T, path string, n int64) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(h, f, n); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
