package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// synopses are the commands' usage lines for -h (as in main's usage).
var synopses = map[string]string{
	"init":   "init INSTANCE --primary-conninfo CONNINFO [options]\ninit --pgdata DIR --primary-conninfo CONNINFO [options]",
	"run":    "run INSTANCE [options]\nrun --pgdata DIR [options]",
	"status": "status [INSTANCE | --pgdata DIR] [--json]",
	"list":   "list [--json]",
	"resync": "resync INSTANCE [--full]\nresync --pgdata DIR [--full]",
}

// parseInterspersed parses flags before and after the positional arguments
// ("init 15-standby --primary-conninfo …"): the flag package alone stops at
// the first argument that is not a flag.
func parseInterspersed(fs *flag.FlagSet, args []string) error {
	if syn, ok := synopses[fs.Name()]; ok {
		fs.Usage = func() {
			fmt.Fprintf(fs.Output(), "Usage:\n  pg-standby %s\n\nOptions:\n", strings.ReplaceAll(syn, "\n", "\n  pg-standby "))
			fs.PrintDefaults()
		}
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return fs.Parse(append([]string{"--"}, pos...))
}

// parseExit is the exit status of a failed parse: -h asked for help (0).
func parseExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}
