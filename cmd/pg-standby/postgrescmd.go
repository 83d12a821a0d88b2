package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/pg-standby/pg-standby/internal/instance"
)

// postgresCmd execs the postgres server matching a data directory's
// PG_VERSION, for instances that have no Debian cluster unit.
func postgresCmd(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "pg-standby postgres: want one INSTANCE")
		return exitUsage
	}
	in, err := instance.Resolve(args[0], false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pg-standby postgres:", err)
		return exitUsage
	}
	if _, err := os.Lstat(filepath.Join(in.DataDir, instance.BackupSignal)); err == nil {
		fmt.Fprintf(os.Stderr, "pg-standby postgres: %s still has %s: the base backup is not finished\n", in.DataDir, instance.BackupSignal)
		return exitRefused
	}
	ver, err := in.PGVersion()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pg-standby postgres:", err)
		return exitRefused
	}
	bin := filepath.Join("/usr/lib/postgresql", ver, "bin", "postgres")
	if d := os.Getenv("PG_BINDIR"); d != "" {
		bin = filepath.Join(d, "postgres")
	}
	// postgres finds its own installation from argv[0]: it must be the full path.
	argv := []string{bin, "-D", in.DataDir}
	if in.ConfFile != filepath.Join(in.DataDir, "postgresql.conf") {
		argv = append(argv, "-c", "config_file="+in.ConfFile)
	}
	err = syscall.Exec(bin, argv, os.Environ())
	fmt.Fprintf(os.Stderr, "pg-standby postgres: exec %s: %v\n", bin, err)
	return exitTransient
}
