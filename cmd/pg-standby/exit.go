package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/pg-standby/pg-standby/internal/backup"
)

// Exit statuses; the permanent ones are listed in the unit's
// RestartPreventExitStatus= so systemd does not retry them for ever.
const (
	exitOK        = 0
	exitTransient = 1  // may succeed when retried (network, primary restart, disk full)
	exitUsage     = 2  // bad command line
	exitCorrupt   = 65 // EX_DATAERR: the primary reported data checksum failures
	exitProtocol  = 76 // EX_PROTOCOL: the primary's stream broke the archive or protocol rules
	exitRefused   = 77 // EX_NOPERM: the directory or a tablespace location must not be written
	exitConfig    = 78 // EX_CONFIG: misconfiguration (conninfo, authentication, REPLICATION, wal_level, slot)
	exitCancelled = 143
)

func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, context.Canceled):
		return exitCancelled
	}
	switch backup.KindOf(err) {
	case backup.Config:
		return exitConfig
	case backup.Refused:
		return exitRefused
	case backup.Corrupt:
		return exitCorrupt
	case backup.Protocol:
		return exitProtocol
	default:
		return exitTransient
	}
}

func nopLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
