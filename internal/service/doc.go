// Package service runs the worker the way the systemd unit needs it: backup
// attempts with in-process retries for transient failures (so the start job
// stays alive and `systemctl start` tells the truth), a stall watchdog, and
// progress handed to sinks (systemd, journal, D-Bus).
package service
