// Package testpg is the test harness for pg-standby: it creates, starts and
// always stops real PostgreSQL servers for tests: Debian 12's postgresql-15
// (BinDir), and 17 and 18 from a cached rootfs (Version, scripts/pg-rootfs.sh).
// ForEachVersion runs a test once per major selected by PGSTANDBY_TEST_PG;
// inside it Start and StartStandby use that major (VersionOf).
//
// Start initdb's a fresh primary configured for streaming replication, with a
// "replicator" role that tests connect as over TCP on 127.0.0.1 (ConnString).
// StartStandby starts a server on a data directory produced by a base backup.
// SQL, Pgbench and StartWrites drive a server as the superuser over its own
// unix socket.
//
// PostgreSQL refuses to run as root. When the tests run as root every
// PostgreSQL program is run as the "postgres" system user, and every directory
// the server needs (TempDir, Chown) is owned by that user.
//
// Every server is stopped in t.Cleanup, and additionally by a small watchdog
// process that stops it if the test binary dies without running its cleanups
// (for example on a -timeout panic or SIGKILL).
package testpg
