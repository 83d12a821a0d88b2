// Package metrics keeps one file per instance in node_exporter's textfile
// format up to date while the worker runs: a progress.Sink, so it only
// observes snapshots and never sits in the data path. The file is written
// as NAME.prom.PID and renamed into place (what the textfile collector
// expects), mode 0644 for node_exporter's user whatever the unit's umask,
// holds no timestamps in samples and nothing secret (no conninfo, no error
// text: only the failure's class). See docs/metrics.md.
package metrics
