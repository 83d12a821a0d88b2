package backup_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

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
	serverCert(t, certs)
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

// serverCert writes a self-signed server.crt and server.key for 127.0.0.1.
func serverCert(t *testing.T, dir string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string]*pem.Block{"server.crt": {Type: "CERTIFICATE", Bytes: der}, "server.key": {Type: "EC PRIVATE KEY", Bytes: kder}} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
