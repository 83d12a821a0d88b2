package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"
)

// sample is one whole-process run: wall time and the kernel's accounting
// of the process tree (getrusage of the reaped child).
type sample struct {
	Wall    float64 `json:"wall_s"`
	CPU     float64 `json:"cpu_s"`
	PeakRSS float64 `json:"peak_rss_mib"`
	Bytes   int64   `json:"bytes,omitempty"`
	Output  string  `json:"-"`
}

// runAs runs argv as cred (nil: this process's user) and measures it. The
// command runs under GNU time, which forks it from its own small image: a
// child forked straight from this Go process would report this process's
// resident size as its peak (ru_maxrss survives exec).
func runAs(ctx context.Context, cred *syscall.Credential, env []string, argv ...string) (sample, error) {
	f, err := os.CreateTemp("", "pg-standby-bench-time-")
	if err != nil {
		return sample{}, err
	}
	f.Close()
	defer os.Remove(f.Name())
	if cred != nil {
		os.Chown(f.Name(), int(cred.Uid), int(cred.Gid))
	}
	full := append([]string{"/usr/bin/time", "-o", f.Name(), "-f", "%U %S %M"}, argv...)
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	t0 := time.Now()
	err = cmd.Run()
	s := sample{Wall: time.Since(t0).Seconds(), Output: out.String()}
	if b, rerr := os.ReadFile(f.Name()); rerr == nil {
		var user, sys, kb float64
		// The last line holds the figures (a failed command adds one before).
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if _, serr := fmt.Sscan(lines[len(lines)-1], &user, &sys, &kb); serr == nil {
			s.CPU, s.PeakRSS = user+sys, kb/1024
		}
	}
	if err != nil {
		return s, fmt.Errorf("%v: %w\n%s", argv, err, tail(out.String()))
	}
	return s, nil
}

func tail(s string) string {
	if len(s) > 2000 {
		return "…" + s[len(s)-2000:]
	}
	return s
}

// stats are min, median and max of one figure.
type stats struct {
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

func summarize(xs []float64) stats {
	if len(xs) == 0 {
		return stats{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stats{Min: s[0], Median: m, Max: s[len(s)-1]}
}

func pick(samples []sample, f func(sample) float64) []float64 {
	var xs []float64
	for _, s := range samples {
		xs = append(xs, f(s))
	}
	return xs
}

// ratios pairs the i-th runs of a and b.
func ratios(a, b []sample, f func(sample) float64) stats {
	var xs []float64
	for i := range min(len(a), len(b)) {
		if f(b[i]) > 0 {
			xs = append(xs, f(a[i])/f(b[i]))
		}
	}
	return summarize(xs)
}
