// Package backup runs one base backup attempt into a pg-standby instance:
// it connects to the primary named by the instance's primary_conninfo,
// streams BASE_BACKUP through the archive chain into the data directory and
// tablespaces while WAL streams beside it, verifies the manifest, makes
// everything durable and hands the directory over as a standby.
package backup
