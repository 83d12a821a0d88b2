package instance

// Names inside the data directory that pg-standby reads or writes.
const (
	// BackupSignal marks an instance whose base backup is still to be taken.
	// It is removed last, durably, once the instance is a complete standby.
	BackupSignal = "basebackup.signal"
	// StandbySignal makes postgres start in standby mode.
	StandbySignal = "standby.signal"
	// PgControl is written last under PgControlPending, so postgres can
	// never start on a half-copied directory.
	PgControl        = "global/pg_control"
	PgControlPending = "global/pg_control.pg-standby"
	PostmasterPid    = "postmaster.pid"
	AutoConf         = "postgresql.auto.conf"
	Manifest         = "backup_manifest"
)

// ConfigFiles are the files a minimal instance may keep from its own copy:
// the primary's versions of exactly these are not written over them.
var ConfigFiles = []string{"postgresql.conf", "pg_hba.conf", "pg_ident.conf"}
