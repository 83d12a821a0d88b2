package walstream

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/pg-standby/pg-standby/internal/wal"
)

// XLogData ('w') carries WAL starting at Start; Data aliases the receive buffer.
type XLogData struct {
	Start, ServerEnd wal.LSN
	Data             []byte
}

// Keepalive ('k') reports the server's WAL end; ReplyRequested asks for a
// status update at once (the sender times out without one).
type Keepalive struct {
	ServerEnd      wal.LSN
	ReplyRequested bool
}

// message is one decoded CopyData payload: Type 'w' sets w, 'k' sets k. A
// value, not an interface, so that decoding does not allocate per message.
type message struct {
	Type byte
	w    XLogData
	k    Keepalive
}

// decode parses one CopyData payload of START_REPLICATION (protocol-replication.html).
func decode(p []byte) (message, error) {
	if len(p) == 0 {
		return message{}, fmt.Errorf("WAL stream: empty CopyData message")
	}
	switch p[0] {
	case 'w':
		if len(p) < 25 {
			return message{}, fmt.Errorf("WAL stream: XLogData message of %d bytes, want at least 25", len(p))
		}
		return message{Type: 'w', w: XLogData{
			Start:     wal.LSN(binary.BigEndian.Uint64(p[1:])),
			ServerEnd: wal.LSN(binary.BigEndian.Uint64(p[9:])),
			Data:      p[25:],
		}}, nil
	case 'k':
		if len(p) != 18 {
			return message{}, fmt.Errorf("WAL stream: keepalive message of %d bytes, want 18", len(p))
		}
		return message{Type: 'k', k: Keepalive{ServerEnd: wal.LSN(binary.BigEndian.Uint64(p[1:])), ReplyRequested: p[17] != 0}}, nil
	default:
		return message{}, fmt.Errorf("WAL stream: unknown CopyData message type %q", p[0])
	}
}

// pgEpoch is the origin of the replication protocol's timestamps.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// statusUpdate renders a Standby Status Update ('r'): WAL written and
// flushed here; nothing is applied by a backup.
func statusUpdate(written, flushed wal.LSN, now time.Time) []byte {
	b := make([]byte, 34)
	b[0] = 'r'
	binary.BigEndian.PutUint64(b[1:], uint64(written))
	binary.BigEndian.PutUint64(b[9:], uint64(flushed))
	binary.BigEndian.PutUint64(b[17:], 0)
	binary.BigEndian.PutUint64(b[25:], uint64(now.Sub(pgEpoch).Microseconds()))
	return b
}
