package fakeprimary

import (
	"encoding/binary"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pg-standby/pg-standby/internal/wal"
)

// WALTimeline scripts START_REPLICATION on one timeline.
type WALTimeline struct {
	// Messages are the CopyData payloads sent after CopyBothResponse
	// (WALData, Keepalive or anything malformed); then the server waits.
	Messages [][]byte
	// Next, if non-zero, ends the timeline after Messages as a walsender
	// does at a timeline switch: CopyDone, and once the client's CopyDone
	// arrives the result set (Next, NextStart) and CommandComplete.
	Next      uint32
	NextStart wal.LSN
	// History is TIMELINE_HISTORY's file content for this timeline.
	History string
}

// WALData is an XLogData ('w') payload carrying data from start.
func WALData(start, serverEnd wal.LSN, data []byte) []byte {
	p := make([]byte, 25, 25+len(data))
	p[0] = 'w'
	binary.BigEndian.PutUint64(p[1:], uint64(start))
	binary.BigEndian.PutUint64(p[9:], uint64(serverEnd))
	binary.BigEndian.PutUint64(p[17:], uint64(pgTime(time.Now())))
	return append(p, data...)
}

// Keepalive is a primary keepalive ('k') payload.
func Keepalive(serverEnd wal.LSN, replyRequested bool) []byte {
	p := make([]byte, 18)
	p[0] = 'k'
	binary.BigEndian.PutUint64(p[1:], uint64(serverEnd))
	binary.BigEndian.PutUint64(p[9:], uint64(pgTime(time.Now())))
	if replyRequested {
		p[17] = 1
	}
	return p
}

// StatusUpdate is a standby status update ('r') the server received.
type StatusUpdate struct {
	Written, Flushed, Applied wal.LSN
	ClientTime                time.Time
	ReplyRequested            bool
}

var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func pgTime(t time.Time) int64 { return t.Sub(pgEpoch).Microseconds() }

// parseStatus decodes a status update as walsender.c's ProcessStandbyReplyMessage reads it.
func parseStatus(p []byte) (StatusUpdate, bool) {
	if len(p) != 34 || p[0] != 'r' {
		return StatusUpdate{}, false
	}
	return StatusUpdate{
		Written:        wal.LSN(binary.BigEndian.Uint64(p[1:])),
		Flushed:        wal.LSN(binary.BigEndian.Uint64(p[9:])),
		Applied:        wal.LSN(binary.BigEndian.Uint64(p[17:])),
		ClientTime:     pgEpoch.Add(time.Duration(int64(binary.BigEndian.Uint64(p[25:]))) * time.Microsecond),
		ReplyRequested: p[33] != 0,
	}, true
}

// Statuses returns the status updates received so far, in order.
func (s *Server) Statuses() []StatusUpdate {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]StatusUpdate(nil), s.statuses...)
}

// WaitStatus waits up to timeout for a status update for which ok is true
// and returns it; it fails the test when none arrives.
func (s *Server) WaitStatus(t testing.TB, timeout time.Duration, ok func(StatusUpdate) bool) StatusUpdate {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	seen := 0
	for {
		s.mu.Lock()
		list, changed := s.statuses[seen:], s.changed
		s.mu.Unlock()
		for _, u := range list {
			if ok(u) {
				return u
			}
		}
		seen += len(list)
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("fakeprimary: no matching status update within %v; got %+v", timeout, s.Statuses())
			return StatusUpdate{}
		}
	}
}

// fromClient handles CopyData and CopyDone of a WAL stream.
func (ss *session) fromClient(msg pgproto3.FrontendMessage) error {
	switch m := msg.(type) {
	case *pgproto3.CopyData:
		if u, ok := parseStatus(m.Data); ok {
			s := ss.s
			s.mu.Lock()
			s.statuses = append(s.statuses, u)
			close(s.changed)
			s.changed = make(chan struct{})
			s.mu.Unlock()
		}
	case *pgproto3.CopyDone:
		tl := ss.ending
		if tl == nil {
			return nil // the client ends a stream the server did not end: nothing to say
		}
		ss.ending = nil
		ss.rows("SELECT", []string{"next_tli", "next_tli_startpos"},
			[]*string{str(strconv.FormatUint(uint64(tl.Next), 10)), str(tl.NextStart.String())})
		ss.be.Send(&pgproto3.CommandComplete{CommandTag: []byte("START_STREAMING")})
		return ss.ready()
	}
	return nil
}

// scriptedWAL sends tli's script; the stream stays open unless it ends the timeline.
func (ss *session) scriptedWAL(tl WALTimeline) error {
	ss.be.Send(&pgproto3.CopyBothResponse{OverallFormat: 0})
	for _, p := range tl.Messages {
		ss.be.Send(&pgproto3.CopyData{Data: p})
		if err := ss.be.Flush(); err != nil {
			return err
		}
	}
	if tl.Next != 0 {
		ss.ending = &tl
		ss.be.Send(&pgproto3.CopyDone{})
	}
	return ss.be.Flush()
}

func (ss *session) timelineHistory(tli uint32) error {
	tl, ok := ss.s.script.WAL[tli]
	if !ok {
		return ss.fail("58P01", "fakeprimary: no history for timeline "+strconv.FormatUint(uint64(tli), 10))
	}
	ss.rows("TIMELINE_HISTORY", []string{"filename", "content"},
		[]*string{str(wal.HistoryFileName(tli)), str(tl.History)})
	return ss.ready()
}
