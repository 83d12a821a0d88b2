// Command pg-standby turns a minimal PostgreSQL instance into a streaming
// standby of the primary its postgresql.conf names.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

const usage = `pg-standby makes this machine a PostgreSQL standby of a primary.

Usage:
  pg-standby init INSTANCE --primary-conninfo CONNINFO [options]
                                    make a minimal instance (configuration + basebackup.signal)
  pg-standby init INSTANCE OPTION...
                                    on an existing minimal instance: change only those settings
  pg-standby run INSTANCE           take the base backup; what pg-standby@INSTANCE.service runs
  pg-standby run --pgdata DIR       the same for a data directory given directly
  pg-standby resync INSTANCE [--full] | --pgdata DIR [--full]
                                    make a stopped standby pending again; the next run brings
                                    it up to date (changed blocks only on 17+, or --full)
  pg-standby status [INSTANCE] [--json]
                                    the backup's state: live from a running worker (D-Bus),
                                    else from the instance's directory; the unit's state
  pg-standby wait INSTANCE [--for ready|streaming] [--timeout D]
                                    block until the standby is ready (or streaming): exit 0;
                                    3 when the backup failed for good, 75 at the timeout
  pg-standby list [--json]          every known instance (Debian clusters, running workers), one line each
  pg-standby metrics INSTANCE       refresh a finished standby's metrics file (as its owner;
                                    pg-standby-metrics@INSTANCE.timer runs it, docs/metrics.md)
  pg-standby patroni-replica --datadir=DIR --connstring=CONNINFO ...
                                    a Patroni replica method: copy only (docs/patroni.md)
  pg-standby condition INSTANCE     postgres' ExecCondition: skip postgres while a backup is pending
  pg-standby postgres INSTANCE      exec the postgres server of a data-directory instance
  pg-standby version

INSTANCE is a Debian cluster (15-main: /etc/postgresql/15/main), or an absolute
or systemd-escaped data directory path (srv-pg-standby is /srv/pg/standby).
Run "pg-standby COMMAND -h" for a command's options.
`

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		if s, ok := <-sigc; ok {
			cancel(&signalError{s.(syscall.Signal)})
		}
	}()
	code := run(ctx, os.Args[1:])
	var sig *signalError
	if errors.As(context.Cause(ctx), &sig) {
		// Die by the signal, as systemd and shells expect of a clean stop.
		signal.Reset(sig.sig)
		syscall.Kill(os.Getpid(), sig.sig)
		time.Sleep(time.Second)
	}
	os.Exit(code)
}

// signalError is the cancellation cause of a SIGTERM/SIGINT; it is a
// context.Canceled to errors.Is.
type signalError struct{ sig syscall.Signal }

func (e *signalError) Error() string        { return "stopped by " + e.sig.String() }
func (e *signalError) Is(target error) bool { return target == context.Canceled }

func run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		return runCmd(ctx, args[1:])
	case "init":
		return initCmd(ctx, args[1:])
	case "resync":
		return resyncCmd(ctx, args[1:])
	case "status":
		return statusCmd(ctx, args[1:])
	case "list":
		return listCmd(ctx, args[1:])
	case "wait":
		return waitCmd(ctx, args[1:])
	case "metrics":
		return metricsCmd(ctx, args[1:])
	case "condition":
		return conditionCmd(ctx, args[1:])
	case "patroni-replica":
		return patroniReplicaCmd(ctx, args[1:])
	case "postgres":
		return postgresCmd(args[1:])
	case "health-probe": // status' child as the data directory's owner; not for users
		return healthProbeCmd(ctx, args[1:])
	case "version", "--version":
		fmt.Println("pg-standby", version)
		return exitOK
	case "help", "-h", "--help":
		fmt.Print(usage)
		return exitOK
	default:
		fmt.Fprintf(os.Stderr, "pg-standby: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"
