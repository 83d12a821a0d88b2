package main

import (
	"errors"
	"flag"
)

// parseInterspersed parses flags before and after the positional arguments
// ("init 15-standby --primary-conninfo …"): the flag package alone stops at
// the first argument that is not a flag.
func parseInterspersed(fs *flag.FlagSet, args []string) error {
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
