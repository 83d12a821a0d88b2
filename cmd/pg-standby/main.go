// Command pg-standby turns a minimal PostgreSQL instance into a streaming
// standby of the primary its postgresql.conf names.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `pg-standby makes this machine a PostgreSQL standby of a primary.

Usage:
  pg-standby run --pgdata DIR [options]   take the base backup into a pg-standby instance
  pg-standby version

Run "pg-standby COMMAND -h" for a command's options.
`

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	switch args[0] {
	case "run":
		return runCmd(ctx, args[1:])
	case "version", "--version":
		fmt.Println("pg-standby", version)
		return 0
	case "help", "-h", "--help":
		fmt.Print(usage)
		return 0
	default:
		fmt.Fprintf(os.Stderr, "pg-standby: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"
