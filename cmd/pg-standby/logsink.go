package main

import (
	"log/slog"
	"time"

	"github.com/pg-standby/pg-standby/internal/progress"
)

const defaultLogInterval = 10 * time.Second

// logSink logs progress when the phase changes or copying moved on by 10 %.
type logSink struct {
	log       *slog.Logger
	phase     progress.Phase
	lastTenth int
}

func (l *logSink) Report(s progress.Snapshot) {
	tenth := -1
	if f, ok := s.Fraction(); ok {
		tenth = int(f * 10)
	}
	if s.Phase == l.phase && (s.Phase != progress.Copying || tenth <= l.lastTenth) {
		return
	}
	l.phase, l.lastTenth = s.Phase, tenth
	l.log.Info(s.Line(), "phase", string(s.Phase), "bytes_done", s.Streamed, "bytes_total", s.Total)
}
