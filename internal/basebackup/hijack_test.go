package basebackup

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg-standby/pg-standby/internal/testpg"
)

// TestHijack takes a real replication connection over from pgconn, on
// every version: a live one runs a whole BASE_BACKUP through the wire, a
// closed one is refused with the step named.
func TestHijack(t *testing.T) {
	testpg.ForEachVersion(t, testHijack)
}

func testHijack(t *testing.T, v testpg.Version) {
	s := v.Start(t, testpg.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	connect := func() *pgconn.PgConn {
		pc, err := pgconn.Connect(ctx, s.ConnString()+" replication=true")
		if err != nil {
			t.Fatal(err)
		}
		return pc
	}

	t.Run("live", func(t *testing.T) {
		conn, err := Hijack(ctx, connect())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		bk, err := Start(ctx, conn, Options{Label: "hijack", Checkpoint: "fast"})
		if err != nil {
			t.Fatal(err)
		}
		if bk.Started.LSN == 0 || bk.Started.Timeline != 1 {
			t.Errorf("started at %v on timeline %d", bk.Started.LSN, bk.Started.Timeline)
		}
		c := &collect{direct: true, files: map[string][]byte{}}
		end, err := bk.Stream(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if end.LSN < bk.Started.LSN {
			t.Errorf("ended at %v, before the start %v", end.LSN, bk.Started.LSN)
		}
		if len(c.files["global/pg_control"]) != 8192 || !strings.Contains(c.manifest.String(), `"global/pg_control"`) {
			t.Errorf("pg_control: %d bytes; manifest of %d bytes", len(c.files["global/pg_control"]), c.manifest.Len())
		}
	})

	t.Run("closed", func(t *testing.T) {
		pc := connect()
		pc.Close(ctx)
		conn, err := Hijack(ctx, pc)
		if err == nil {
			conn.Close()
			t.Fatal("a closed connection was taken over")
		}
		if !strings.HasPrefix(err.Error(), "take over the replication connection: ") {
			t.Errorf("error %q does not name the step", err)
		}
	})
}
