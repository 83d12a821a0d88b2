package backup_test

import (
	"path/filepath"
	"testing"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// TestBackupOverTLS: with sslmode=require the archives come through TLS,
// where the wire cannot readv from the socket and reads decrypted bytes
// into the writers' buffers instead. The primary refuses replication
// without TLS, so the backup passing pg_verifybackup proves the path.
func TestBackupOverTLS(t *testing.T) {
	testpg.Require(t)
	certs := testpg.TempDir(t)
	ca, caKey := testpg.MakeCert(t, certs, "ca", nil, nil)
	testpg.MakeCert(t, certs, "server", ca, caKey)
	testpg.Chown(t, certs)
	p := testpg.Start(t, testpg.Options{
		Conf: map[string]string{"ssl": "on", "ssl_cert_file": filepath.Join(certs, "server.crt"),
			"ssl_key_file": filepath.Join(certs, "server.key")},
		HBA: []string{"hostnossl replication all 127.0.0.1/32 reject"},
	})
	p.Pgbench(t, "-i", "-s", "2", "-q")
	dir := newInstance(t, p.ConnString()+" sslmode=require")
	res, err := run(t, backup.Options{DataDir: dir})
	if err != nil {
		t.Fatalf("backup over TLS: %v", err)
	}
	t.Logf("backup over TLS: %d files, %d bytes", res.Files, res.Bytes)
	verifyBackup(t, dir)

	plain := newInstance(t, p.ConnString()+" sslmode=disable")
	if _, err := run(t, backup.Options{DataDir: plain}); err == nil {
		t.Fatalf("backup without TLS succeeded: the primary does not enforce TLS, the test proves nothing")
	}
}
