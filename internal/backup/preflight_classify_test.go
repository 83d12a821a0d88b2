package backup_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/progress"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// TestPromotedSourceRetried: a cascading backup whose source standby is
// promoted (pg_promote()) while it sends the copy fails as transient with
// the timelines, not as wal_level; the next attempt copies from the promoted
// server on its new timeline, pg_verifybackup accepts it, and the standby
// replays what the new primary writes.
func TestPromotedSourceRetried(t *testing.T) {
	testpg.ForEachVersion(t, func(t *testing.T, _ testpg.Version) {
		testpg.Require(t)
		p := testpg.Start(t, testpg.Options{})
		p.Pgbench(t, "-i", "-s", "2", "-q")
		first := newInstance(t, p.ConnString())
		if _, err := run(t, backup.Options{DataDir: first}); err != nil {
			t.Fatalf("backup of the primary: %v", err)
		}
		s1 := testpg.StartStandby(t, first)
		cascade := fmt.Sprintf("host=%s port=%d user=replicator dbname=postgres", s1.SocketDir, s1.Port)

		dir := newInstance(t, cascade)
		tracker := progress.NewTracker()
		done := make(chan error, 1)
		go func() {
			_, err := run(t, backup.Options{DataDir: dir, MaxRateKB: 2048, Progress: tracker})
			done <- err
		}()
		deadline := time.Now().Add(2 * time.Minute)
		for tracker.Written.Load() < 1<<20 && time.Now().Before(deadline) {
			select {
			case err := <-done:
				t.Fatalf("backup ended before the promotion: %v", err)
			case <-time.After(20 * time.Millisecond):
			}
		}
		s1.SQL(t, "SELECT pg_promote()")
		err := <-done
		t.Logf("error: %v", err)
		var promoted *backup.PromotedError
		if !errors.As(err, &promoted) || backup.KindOf(err) != backup.Transient || promoted.From != 1 || promoted.To != 2 {
			t.Fatalf("backup from a standby promoted mid-copy: %v (kind %s), want a transient PromotedError from timeline 1 to 2", err, backup.KindOf(err))
		}
		if strings.Contains(err.Error(), "wal_level") {
			t.Errorf("error names wal_level: %v", err)
		}
		res, err := run(t, backup.Options{DataDir: dir})
		if err != nil {
			t.Fatalf("retry after the promotion: %v", err)
		}
		if res.Timeline != 2 {
			t.Errorf("retry ended on timeline %d, want 2", res.Timeline)
		}
		verifyBackup(t, dir)
		s2 := testpg.StartStandby(t, dir)
		s1.SQL(t, "CREATE TABLE after_promotion AS SELECT 42 AS x")
		s2.WaitFor(t, "SELECT x FROM after_promotion", "42", time.Minute)
	})
}

// germanLocale makes de_DE.UTF-8 available to the server (localedef, a few
// seconds, as root), or skips.
func germanLocale(t *testing.T) string {
	t.Helper()
	if out, err := exec.Command("locale", "-a").Output(); err == nil && strings.Contains(strings.ToLower(string(out)), "de_de.utf8") {
		return "de_DE.UTF-8"
	}
	if os.Geteuid() != 0 {
		t.Skip("de_DE.UTF-8 is not installed and generating it needs root")
	}
	if out, err := exec.Command("localedef", "-i", "de_DE", "-f", "UTF-8", "de_DE.UTF-8").CombinedOutput(); err != nil {
		t.Skipf("cannot generate de_DE.UTF-8: %v %s", err, out)
	}
	return "de_DE.UTF-8"
}

// TestClassifiedWhateverTheLanguage: each multi-cause SQLSTATE is sorted by
// facts read on the primary, so a primary answering in German is judged as
// one answering in English; the German text proves the translation was live.
// PostgreSQL 15 only: the 17/18 rootfs has no de_DE locale to start a server in.
func TestClassifiedWhateverTheLanguage(t *testing.T) {
	testpg.Require(t)
	de := germanLocale(t)
	for _, lang := range []struct{ name, lcMessages, word string }{{"C", "C", "currently"}, {"de", de, "aktuell"}} {
		t.Run(lang.name, func(t *testing.T) {
			start := func(conf map[string]string) *testpg.Server {
				conf["lc_messages"] = lang.lcMessages
				return testpg.Start(t, testpg.Options{Conf: conf})
			}
			noSenders := start(map[string]string{"wal_level": "minimal", "max_wal_senders": "0"})
			oneSender := start(map[string]string{"max_wal_senders": "1"})
			twoBusy := start(map[string]string{"max_wal_senders": "2"})
			noSlots := start(map[string]string{"max_replication_slots": "0"})
			hold := holdWALSender(t, twoBusy)
			defer hold()

			cases := []struct {
				name    string
				server  *testpg.Server
				kind    backup.Kind
				setting string // "" for no SettingError
				text    string // the server's own words, proving the language
			}{
				{"max_wal_senders = 0 (at connect)", noSenders, backup.Config, "max_wal_senders", lang.word + " 0"},
				{"max_wal_senders = 1 (second connection)", oneSender, backup.Config, "max_wal_senders", lang.word + " 1"},
				{"all WAL senders busy", twoBusy, backup.Transient, "", lang.word + " 2"},
				{"max_replication_slots = 0", noSlots, backup.Config, "max_replication_slots", ""},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					_, err := run(t, backup.Options{DataDir: newInstance(t, c.server.ConnString())})
					t.Logf("error: %v", err)
					var setting *backup.SettingError
					switch {
					case err == nil:
						t.Fatal("backup succeeded")
					case backup.KindOf(err) != c.kind:
						t.Errorf("kind %s, want %s", backup.KindOf(err), c.kind)
					case c.setting == "" && errors.As(err, &setting):
						t.Errorf("a SettingError (%s) for a busy primary", setting.Setting)
					case c.setting != "" && (!errors.As(err, &setting) || setting.Setting != c.setting):
						t.Errorf("want a SettingError for %s", c.setting)
					case !strings.Contains(err.Error(), c.text):
						t.Errorf("error does not carry the server's %q", c.text)
					}
				})
			}
		})
	}
}

// holdWALSender occupies one WAL sender of s until the returned func runs.
func holdWALSender(t *testing.T, s *testpg.Server) func() {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, s.ConnString()+" replication=true")
	if err != nil {
		t.Fatalf("hold a WAL sender: %v", err)
	}
	return func() { conn.Close(context.Background()) }
}

// TestSecondHostReadWrite is issue 12's case: the first host is down and
// target_session_attrs=read-write; the backup comes from the second, as the
// walreceiver's libpq connects.
func TestSecondHostReadWrite(t *testing.T) {
	testpg.Require(t)
	p := testpg.Start(t, testpg.Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := newInstance(t, fmt.Sprintf("host=127.0.0.1,127.0.0.1 port=%d,%d user=replicator password=%s target_session_attrs=read-write keepalives_idle=30",
		down, p.Port, p.Password))
	if _, err := run(t, backup.Options{DataDir: dir}); err != nil {
		t.Fatalf("backup through the second host: %v", err)
	}
	verifyBackup(t, dir)
}
