// Package busapi publishes a running worker's state on the D-Bus system bus
// and reads it back for `pg-standby status` and `list`.
//
// Each worker owns the bus name NamePrefix + "." + Label(dataDir) (e.g.
// org.pgstandby.Standby1._2fvar_2flib_2fpostgresql_2f15_2fmain) and exports
// one object at Path(dataDir) (/org/pgstandby/Standby1/job/<label>) with the
// interface Interface, modelled on UDisks2's org.freedesktop.UDisks2.Job:
// read-only properties (Instance, Phase, Attempt, BytesDone, BytesTotal,
// Progress, ProgressValid, Rate, StartTime, ExpectedEndTime, Primary,
// StartLSN, EndLSN, LastError, Cancelable, DataDirectory), the method Cancel()
// and the signal Completed(b success, s message). The data directory names
// the instance because it is what the worker locks: one worker per name.
// Introspection XML: org.pgstandby.Standby1.Job.xml (also shipped in
// packaging/dbus/), the policy packaging/dbus/pg-standby.conf.
//
// Publishing never fails or slows the backup: the Publisher takes snapshots
// without blocking, talks to the bus from its own goroutine, logs once when
// the bus is unreachable and reconnects with backoff.
package busapi
