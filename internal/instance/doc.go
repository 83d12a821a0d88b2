// Package instance knows a pg-standby instance on disk: a data directory
// that is waiting for its base backup (basebackup.signal), that is already a
// standby, or that must be refused. It holds the instance lock and performs
// the ordered, durable hand-over that turns a finished copy into a standby.
// It also reads, without the lock, what status and list show (Status,
// LockHolder), and parses the pg_standby.* backup settings once (Settings).
package instance
