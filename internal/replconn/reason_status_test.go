package replconn

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"

	"github.com/pg-standby/pg-standby/internal/testpg"
)

// TestConnectErrorOneLine: the failures of a real connection in one line,
// each cause once (sslmode=prefer makes pgconn try twice per address).
func TestConnectErrorOneLine(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg, err := ParseConninfo(fmt.Sprintf("host=127.0.0.1 port=%d user=replicator", port))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Connect(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if want := fmt.Sprintf("cannot connect to the primary 127.0.0.1:%d: connection refused", port); err == nil || err.Error() != want {
		t.Errorf("refused: %v, want %q", err, want)
	}

	testpg.Require(t)
	p := testpg.Start(t, testpg.Options{HBA: []string{"host replication replicator 127.0.0.1/32 reject"}})
	cfg, err = ParseConninfo(p.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	_, err = Connect(context.Background(), cfg, slog.New(slog.DiscardHandler))
	want := fmt.Sprintf(`cannot connect to the primary 127.0.0.1:%d: FATAL: pg_hba.conf rejects replication connection for host "127.0.0.1", user "replicator", no encryption (SQLSTATE 28000)`, p.Port)
	if err == nil || err.Error() != want {
		t.Errorf("rejected: %v, want %q", err, want)
	}
}
