package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/health"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/progress"
)

// exitFailedState is status' exit for a state that needs the admin (a
// failed attempt, a standby that does not start or stream), like LSB's
// "program is not running" for status actions.
const exitFailedState = 3

// stoppedError is the last error an attempt stopped by SIGTERM/SIGINT or
// Cancel() records.
const stoppedError = backup.Stopped

// standbyHealth probes a copied standby. As root it runs the probe in a
// child as the data directory's owner (pg-standby health-probe DIR): root
// reads nothing postgres controls, and the socket's peer authentication
// sees the owner.
func standbyHealth(ctx context.Context, in *instance.Instance) (*health.Report, error) {
	fi, err := os.Stat(in.DataDir)
	if err != nil {
		return nil, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && os.Geteuid() != 0 && uint32(os.Geteuid()) != st.Uid {
		return nil, fmt.Errorf("the standby's health is known to root and to the data directory's owner (uid %d) only", st.Uid)
	}
	if os.Geteuid() != 0 || !ok || st.Uid == 0 {
		// Not root, or a directory of root's (where no postgres runs).
		r := health.Probe(ctx, in.DataDir, serverLog(in))
		return &r, nil
	}
	return probeAsOwner(ctx, in.DataDir, serverLog(in), st.Uid, st.Gid)
}

// serverLog is where pg_ctlcluster has a Debian cluster's server log by
// default; "" for a path instance (no known place when it is not running).
func serverLog(in *instance.Instance) string {
	if in.Debian == nil {
		return ""
	}
	ver, cluster, _ := strings.Cut(in.Name, "-")
	return "/var/log/postgresql/postgresql-" + ver + "-" + cluster + ".log"
}

// probeAsOwner runs "pg-standby health-probe DIR" as uid/gid, reading its JSON.
func probeAsOwner(ctx context.Context, dataDir, logFile string, uid, gid uint32) (*health.Report, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "health-probe", dataDir, logFile)
	env := []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	if u, err := user.LookupId(strconv.Itoa(int(uid))); err == nil {
		env = append(env, "HOME="+u.HomeDir, "USER="+u.Username)
	}
	cmd.Env = env
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}}
	var out bytes.Buffer
	cmd.Stdout = &limitWriter{w: &out, n: 64 << 10}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("health probe as uid %d: %w", uid, err)
	}
	var r health.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("health probe: %w", err)
	}
	return &r, nil
}

// limitWriter keeps at most n bytes.
type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	k := min(len(p), l.n)
	l.n -= k
	l.w.Write(p[:k])
	return len(p), nil
}

// healthProbeCmd is the child of standbyHealth: the probe as JSON.
func healthProbeCmd(ctx context.Context, args []string) int {
	if len(args) != 2 {
		return exitUsage
	}
	out, _ := json.Marshal(health.Probe(ctx, args[0], args[1]))
	fmt.Println(string(out))
	return exitOK
}

// healthLine is the status text of a copied standby.
func healthLine(state string, h *health.Report, pu *unitState) string {
	var s string
	switch state {
	case stateStandby:
		s = "complete standby, streaming"
		if h.Sender != "" {
			s += " from " + h.Sender
		}
		if h.LagBytes != nil {
			s += ", replay " + progress.Bytes(*h.LagBytes) + " behind"
			if h.LagSeconds != nil {
				s += fmt.Sprintf(" (%.0fs)", *h.LagSeconds)
			}
		}
	case stateNotRunning:
		s = "copied but not starting: " + h.Reason
		if pu != nil && pu.ActiveState != "" {
			s += fmt.Sprintf(" (%s %s", pu.Name, pu.ActiveState)
			if pu.Result != "" && pu.Result != "success" {
				s += ", result " + pu.Result
			}
			s += ")"
		}
		if h.ServerLog != "" {
			s += "; " + h.ServerLog
		}
	case stateStarting:
		s = "copied, " + h.Reason
	case stateFellBehind:
		s = "fell behind: WAL removed on the primary (resync: the standby cannot catch up by streaming)"
	case statePromoted:
		s = h.Reason
	default:
		s = "not streaming: " + h.Reason
	}
	return s
}
