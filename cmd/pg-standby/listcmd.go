package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/pg-standby/pg-standby/internal/instance"
)

// listCmd prints every known instance, one line each: the Debian clusters
// that are pg-standby instances or standbys, and every worker on the bus.
func listCmd(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print a JSON array of status objects (see README.md)")
	if err := parseInterspersed(fs, args); err != nil {
		return parseExit(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "pg-standby list: takes no arguments")
		return exitUsage
	}
	printAll(knownInstances(ctx), *asJSON)
	return exitOK
}

// printAll prints instances one line each, or as a JSON array.
func printAll(all []instanceStatus, asJSON bool) {
	if asJSON {
		if all == nil {
			all = []instanceStatus{}
		}
		out, _ := json.MarshalIndent(all, "", "  ")
		fmt.Println(string(out))
		return
	}
	for _, st := range all {
		fmt.Println(fitLine(st.line()))
	}
}

// knownInstances are the Debian clusters that are pg-standby instances or
// standbys, and every worker on the bus, sorted by name.
func knownInstances(ctx context.Context) []instanceStatus {
	jobs := busJobs()
	var all []instanceStatus
	seen := map[string]bool{}
	confs, _ := filepath.Glob(filepath.Join(instance.ConfRoot(), "*", "*", "postgresql.conf"))
	for _, conf := range confs {
		dir := filepath.Dir(conf)
		name := filepath.Base(filepath.Dir(dir)) + "-" + filepath.Base(dir)
		in, err := instance.Resolve(name, false)
		if err != nil || in.Debian == nil {
			continue
		}
		st := inspectInstance(ctx, in, jobs)
		if st.State == stateOther || st.State == stateMissing {
			continue // a cluster pg-standby has nothing to do with
		}
		seen[in.DataDir] = true
		all = append(all, st)
	}
	for dir, j := range jobs {
		if seen[dir] {
			continue
		}
		in, err := instance.New(dir, "")
		if err != nil {
			continue
		}
		in.Name = j.Instance
		all = append(all, inspectInstance(ctx, in, jobs))
	}
	sort.Slice(all, func(a, b int) bool { return all[a].Instance < all[b].Instance })
	return all
}
