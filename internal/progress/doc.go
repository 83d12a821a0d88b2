// Package progress is how the backup is observed: stages add to atomic
// counters of a Tracker they were given, and one Reporter samples it on a
// ticker and hands Snapshots to sinks (log, systemd, D-Bus). The byte path
// never waits on a sink.
package progress
