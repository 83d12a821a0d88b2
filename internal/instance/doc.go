// Package instance knows a pg-standby instance on disk: a data directory
// that is waiting for its base backup (basebackup.signal), that is already a
// standby, or that must be refused. It holds the instance lock and performs
// the ordered, durable hand-over that turns a finished copy into a standby.
package instance
