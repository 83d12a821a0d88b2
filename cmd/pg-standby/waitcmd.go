package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/pg-standby/pg-standby/internal/busapi"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/progress"
)

// Exit statuses of wait besides exitOK, exitUsage and death by SIGTERM/SIGINT:
// exitFailedState (3, as status) when the backup failed for good or the
// copied standby can never get there (promoted, WAL removed), and
// exitTimeout when --timeout ran out first.
const exitTimeout = 75 // EX_TEMPFAIL: not yet; waiting longer may succeed

// Timing of wait. It looks when the waker says something changed, at
// most every waitGap (or thrice the last look's time), and otherwise every
// waitSlowPoll (waitPoll while a worker runs, whose progress it shows, on
// a terminal, or when nothing can be watched).
const (
	waitPoll     = time.Second
	waitSlowPoll = 5 * time.Second
	waitGap      = 100 * time.Millisecond
	// failGrace is how long a failure must stay, with no worker and no
	// unit starting one, before it is for good: a start queued by
	// `systemctl start --no-block` or a Restart= is given that long to run.
	failGrace = 10 * time.Second
)

func waitCmd(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("wait", flag.ContinueOnError)
	pgdata := fs.String("pgdata", "", "data directory of an instance given directly (instead of INSTANCE)")
	timeout := fs.Duration("timeout", 0, "give up after this long (exit 75); 0: no limit")
	target := fs.String("for", "ready", "ready: the copy is complete (the standby may start); streaming: the standby streams from the primary")
	if err := parseInterspersed(fs, args); err != nil {
		return parseExit(err)
	}
	if *target != "ready" && *target != "streaming" {
		fmt.Fprintf(os.Stderr, "pg-standby wait: --for %q: want ready or streaming\n", *target)
		return exitUsage
	}
	in, err := instanceArg(fs, *pgdata, "", false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pg-standby wait:", err)
		return exitUsage
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	term := progress.NewTerminal(os.Stderr)
	if term != nil {
		defer term.Close()
	}
	return waitFor(ctx, in, *target == "streaming", *timeout, term)
}

// waitFor looks at what status sees until a verdict, each time the waker
// says the instance may have changed (else at a slow poll); off a terminal
// it prints each new state once, on stderr.
func waitFor(ctx context.Context, in *instance.Instance, streaming bool, timeout time.Duration, term *progress.Terminal) int {
	wk := newWaker(in.DataDir, streaming)
	defer wk.close()
	var failingSince time.Time
	shown := ""
	for {
		wk.watchDirs() // before the look: a change during it wakes the next one
		looked := time.Now()
		st := inspectInstance(ctx, in, liveJob(in))
		if ctx.Err() != nil {
			break // a probe cut short says nothing true
		}
		wk.watchPID(st.PID)
		v := waitVerdict(st, streaming)
		switch {
		case v == waitDone:
			if term != nil {
				term.Close()
			}
			fmt.Println(printableLine(st))
			return exitOK
		case v == waitFailed && failingSince.IsZero():
			failingSince = time.Now()
		case v == waitFailed && time.Since(failingSince) >= failGrace, v == waitNever:
			if term != nil {
				term.Close()
			}
			fmt.Fprintln(os.Stderr, "pg-standby wait: gave up:", printableLine(st))
			return exitFailedState
		case v == waitOn:
			failingSince = time.Time{}
		}
		shown = showWait(term, st, shown)
		// While a worker runs, its progress is shown each second, as before.
		next := waitSlowPoll
		if term != nil || !wk.ok() || st.State == stateRunning {
			next = waitPoll
		}
		if v == waitFailed {
			next = min(next, max(time.Until(failingSince.Add(failGrace)), 0))
		}
		// Events come in bursts (a copy creates many files, a standby writes
		// WAL): look at most a third of the time, a probe of the primary too.
		gap := max(waitGap, 3*time.Since(looked))
		if !sleepUntilChange(ctx, wk.c, next, looked.Add(gap)) {
			break
		}
	}
	if term != nil {
		term.Close()
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		fmt.Fprintf(os.Stderr, "pg-standby wait: timed out after %s: %s\n", timeout, printableLine(inspectInstance(context.Background(), in, liveJob(in))))
		return exitTimeout
	}
	return exitCancelled // SIGTERM/SIGINT: main dies by the signal
}

// sleepUntilChange waits d or until woken, and in either case not before
// notBefore; false when ctx ended first.
func sleepUntilChange(ctx context.Context, woken <-chan struct{}, d time.Duration, notBefore time.Time) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-woken:
	}
	return pause(ctx, time.Until(notBefore))
}

// pause waits d; false when ctx ended first.
func pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// The verdicts of one look at the instance.
const (
	waitOn     = iota // not there yet, nothing wrong
	waitDone          // there
	waitFailed        // failed, unless a worker starts soon
	waitNever         // can never get there without the admin
)

// waitVerdict judges a status: ready is the copy complete on disk (what
// the worker's READY=1 means); streaming is the standby's own
// pg_stat_wal_receiver saying so, in recovery.
func waitVerdict(st instanceStatus, streaming bool) int {
	if st.State == stateOther && st.Copy != nil && st.Copy.Patroni {
		return waitNever // Patroni's from here: no pg-standby worker makes it a standby
	}
	switch st.State {
	case stateStandby:
		return waitDone
	case stateStarting, stateNotRunning, stateNotStream:
		if !streaming {
			return waitDone
		}
		return waitOn
	case statePromoted, stateFellBehind:
		return waitNever
	case stateFailed, stateInterrupted, stateOther:
		if st.State == stateInterrupted && (st.LastError == "" || st.stopped()) {
			return waitOn // stopped, resumes at the next start
		}
		if u := st.Unit; u != nil && (u.ActiveState == "activating" || u.ActiveState == "active" || u.ActiveState == "reloading") {
			return waitOn // a Restart= or a start job is under way
		}
		return waitFailed
	}
	if u := st.Unit; st.State == stateNotStarted && u != nil && u.ActiveState == "failed" {
		return waitFailed // e.g. an instance the worker cannot resolve (exit 2)
	}
	return waitOn // running, not started, missing, unknown: tolerated until the timeout
}

// showWait shows the state: the live line on a terminal, else each new
// one on stderr (Ansible's log keeps it). It returns what it showed.
func showWait(term *progress.Terminal, st instanceStatus, shown string) string {
	line := printableLine(st)
	if term != nil {
		term.Show(line)
		return line
	}
	key := st.State
	if st.Job != nil {
		key += " " + st.Job.Phase
	}
	if key != shown {
		fmt.Fprintln(os.Stderr, line)
	}
	return key
}

func printableLine(st instanceStatus) string { return fitLine(st.line()) }

// liveJob is the instance's worker on the bus, if any (nil without a bus).
func liveJob(in *instance.Instance) map[string]busapi.Job {
	conn, err := busapi.Connect()
	if err != nil {
		return nil
	}
	defer conn.Close()
	if j, ok, err := busapi.Lookup(conn, in.DataDir); err == nil && ok {
		return map[string]busapi.Job{in.DataDir: j}
	}
	return nil
}
