package notify_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/notify"
	"github.com/pg-standby/pg-standby/internal/progress"
)

func snap(at time.Time, phase progress.Phase, streamed int64) progress.Snapshot {
	return progress.Snapshot{Phase: phase, At: at, Streamed: streamed}
}

func TestSink(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

	tests := []struct {
		name     string
		watchdog bool
		stall    time.Duration
		reports  []progress.Snapshot
		want     []string // one per report, "" for no datagram
	}{
		{
			name:  "status and extension on first report",
			stall: 2 * time.Minute,
			reports: []progress.Snapshot{
				snap(at(0), progress.Connecting, 0),
			},
			want: []string{"STATUS=connecting\nEXTEND_TIMEOUT_USEC=120000000"},
		},
		{
			name:  "status rate-limited, then caught up",
			stall: time.Minute,
			reports: []progress.Snapshot{
				snap(at(0), progress.Connecting, 0),
				snap(at(200), progress.Checkpoint, 0),
				snap(at(400), progress.Checkpoint, 0),
				snap(at(1100), progress.Checkpoint, 0),
				snap(at(1300), progress.Checkpoint, 0),
			},
			// A checkpoint moves no bytes but is work under way: it keeps extending.
			want: []string{
				"STATUS=connecting\nEXTEND_TIMEOUT_USEC=60000000",
				"EXTEND_TIMEOUT_USEC=60000000", // phase changed; line held back
				"EXTEND_TIMEOUT_USEC=60000000",
				"STATUS=waiting for checkpoint on primary\nEXTEND_TIMEOUT_USEC=60000000", // held-back line
				"EXTEND_TIMEOUT_USEC=60000000",
			},
		},
		{
			name:  "ticker jitter tolerated",
			stall: time.Minute,
			reports: []progress.Snapshot{
				snap(at(0), progress.Copying, 0),
				snap(at(995), progress.Copying, 1<<20),
			},
			want: []string{
				"STATUS=copying 0 B\nEXTEND_TIMEOUT_USEC=60000000",
				"STATUS=copying 1.0 MiB\nEXTEND_TIMEOUT_USEC=60000000",
			},
		},
		{
			name:  "extension only while progress moves",
			stall: time.Minute,
			reports: []progress.Snapshot{
				snap(at(0), progress.Copying, 10),
				snap(at(1000), progress.Copying, 10),
				snap(at(2000), progress.Copying, 10),
				{Phase: progress.Copying, At: at(3000), Streamed: 10, Written: 5},
				{Phase: progress.Copying, At: at(4000), Streamed: 10, Written: 5},
				{Phase: progress.WaitingWAL, At: at(5000), Streamed: 10, Written: 5},
				{Phase: progress.WaitingWAL, At: at(6000), Streamed: 10, Written: 5, WALTo: 100},
			},
			want: []string{
				"STATUS=copying 10 B\nEXTEND_TIMEOUT_USEC=60000000",
				"",
				"",
				"EXTEND_TIMEOUT_USEC=60000000",
				"",
				"STATUS=streaming WAL\nEXTEND_TIMEOUT_USEC=60000000",
				"EXTEND_TIMEOUT_USEC=60000000",
			},
		},
		{
			name:  "no stall, no extension",
			stall: 0,
			reports: []progress.Snapshot{
				snap(at(0), progress.Copying, 0),
				snap(at(1000), progress.Copying, 0),
			},
			want: []string{"STATUS=copying 0 B", ""},
		},
		{
			name:     "watchdog on every report, in the same datagram",
			watchdog: true,
			stall:    time.Minute,
			reports: []progress.Snapshot{
				snap(at(0), progress.Copying, 0),
				snap(at(100), progress.Copying, 0),
				snap(at(200), progress.Copying, 1),
			},
			want: []string{
				"STATUS=copying 0 B\nEXTEND_TIMEOUT_USEC=60000000\nWATCHDOG=1",
				"WATCHDOG=1",
				"EXTEND_TIMEOUT_USEC=60000000\nWATCHDOG=1",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := listen(t)
			if tt.watchdog {
				t.Setenv("WATCHDOG_USEC", "10000000")
				t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
			} else {
				t.Setenv("WATCHDOG_USEC", "")
			}
			k := notify.New(nil).Sink(tt.stall)
			for i, s := range tt.reports {
				k.Report(s)
				if tt.want[i] == "" {
					none(t, conn)
					continue
				}
				if got := recv(t, conn); got != tt.want[i] {
					t.Errorf("report %d (%s, %d B at %s): got %q, want %q",
						i, s.Phase, s.Streamed, s.At.Sub(t0), got, tt.want[i])
				}
			}
		})
	}
}

func TestSinkWatchdogOnlyForThisPID(t *testing.T) {
	conn := listen(t)
	t.Setenv("WATCHDOG_USEC", "10000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()+1))
	k := notify.New(nil).Sink(0)

	k.Report(snap(time.Now(), progress.Copying, 0))
	if got, want := recv(t, conn), "STATUS=copying 0 B"; got != want {
		t.Errorf("WATCHDOG_PID of another process: got %q, want %q", got, want)
	}
	k.Report(snap(time.Now(), progress.Copying, 0))
	none(t, conn)
}

// TestSinkWithReporter runs the sink under progress.Report, as the worker does.
func TestSinkWithReporter(t *testing.T) {
	conn := listen(t)
	t.Setenv("WATCHDOG_USEC", "")
	tr := progress.NewTracker()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		progress.Report(ctx, tr, 10*time.Millisecond, notify.New(nil).Sink(time.Minute))
	}()
	if got, want := recv(t, conn), "STATUS=checking the instance\nEXTEND_TIMEOUT_USEC=60000000"; got != want {
		t.Errorf("first report: got %q, want %q", got, want)
	}
	cancel()
	<-done
}
