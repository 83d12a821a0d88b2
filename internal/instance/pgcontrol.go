package instance

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/pg-standby/pg-standby/internal/wal"
)

// pgControlSize is PG_CONTROL_FILE_SIZE: the file is always 8192 bytes,
// the struct (ControlFileData, src/include/catalog/pg_control.h) at its start.
const pgControlSize = 8192

// DBState is pg_control's state (pg_control.h, enum DBState, 9.6+).
type DBState uint32

const (
	DBStartup DBState = iota
	DBShutdowned
	DBShutdownedInRecovery
	DBShutdowning
	DBInCrashRecovery
	DBInArchiveRecovery
	DBInProduction
)

// String is pg_controldata's wording ("Database cluster state").
func (s DBState) String() string {
	names := []string{"starting up", "shut down", "shut down in recovery", "shutting down",
		"in crash recovery", "in archive recovery", "in production"}
	if int(s) < len(names) {
		return names[s]
	}
	return fmt.Sprintf("unrecognized status code %d", uint32(s))
}

// Control is what pg-standby reads from global/pg_control.
type Control struct {
	SystemID uint64
	Version  uint32 // pg_control_version: 1300 (13-16), 1700, 1800
	State    DBState
	// Checkpoint is the last checkpoint (on a standby: restartpoint)
	// record; Redo its REDO location, TLI its ThisTimeLineID.
	Checkpoint, Redo wal.LSN
	TLI              uint32
	// MinRecovery is minRecoveryPoint (0 when unset, as on a primary):
	// on a standby, no page on disk is newer than it (XLogFlush in
	// recovery advances it before a page is written).
	MinRecovery    wal.LSN
	MinRecoveryTLI uint32
}

// crcOffset is offsetof(ControlFileData, crc) per pg_control_version on
// the 64-bit little-endian layouts PostgreSQL's Debian packages build: 18
// added default_char_signedness before the 32-byte nonce. The fields read
// here (offsets 0..147) are at the same place in 13 through 18.
var crcOffset = map[uint32]int{1300: 288, 1700: 288, 1800: 292}

// The offsets of the fields read, from pg_control.h's ControlFileData and
// CheckPoint (checkPointCopy starts at 40; its redo at +0, ThisTimeLineID
// at +8; 88 bytes; then unloggedLSN, minRecoveryPoint, minRecoveryPointTLI).
const (
	offSystemID       = 0
	offVersion        = 8
	offState          = 16
	offCheckpoint     = 32
	offRedo           = 40
	offTLI            = 48
	offMinRecovery    = 136
	offMinRecoveryTLI = 144
)

// ErrNoControl says the data directory has no global/pg_control.
var ErrNoControl = errors.New("no " + PgControl)

// ReadControl reads global/pg_control of the data directory dir without
// following a symlink in global/ or at the file, bounded to its 8192 bytes,
// and checks its CRC-32C. A missing file is ErrNoControl.
func ReadControl(dir string) (*Control, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open data directory %s: %w", dir, err)
	}
	defer root.Close()
	f, err := root.OpenFile(PgControl, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoControl
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", PgControl, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, fmt.Errorf("stat %s: %w", PgControl, err)
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", PgControl)
	}
	buf := make([]byte, pgControlSize+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("read %s: %w", PgControl, err)
	}
	if n != pgControlSize {
		return nil, fmt.Errorf("%s is not %d bytes long (read %d)", PgControl, pgControlSize, n)
	}
	return ParseControl(buf[:n])
}

// ParseControl decodes the 8192 bytes of a pg_control file.
func ParseControl(b []byte) (*Control, error) {
	if len(b) != pgControlSize {
		return nil, fmt.Errorf("pg_control: %d bytes, want %d", len(b), pgControlSize)
	}
	le := binary.LittleEndian
	c := &Control{Version: le.Uint32(b[offVersion:])}
	off, ok := crcOffset[c.Version]
	if !ok {
		return nil, fmt.Errorf("pg_control: version %d is not one pg-standby knows (PostgreSQL 13 to 18 write 1300, 1700, 1800)", c.Version)
	}
	if got, want := crc32.Checksum(b[:off], crc32.MakeTable(crc32.Castagnoli)), le.Uint32(b[off:]); got != want {
		return nil, fmt.Errorf("pg_control: CRC-32C %08x does not match the stored %08x: the file is corrupt", got, want)
	}
	c.SystemID = le.Uint64(b[offSystemID:])
	c.State = DBState(le.Uint32(b[offState:]))
	c.Checkpoint = wal.LSN(le.Uint64(b[offCheckpoint:]))
	c.Redo = wal.LSN(le.Uint64(b[offRedo:]))
	c.TLI = le.Uint32(b[offTLI:])
	c.MinRecovery = wal.LSN(le.Uint64(b[offMinRecovery:]))
	c.MinRecoveryTLI = le.Uint32(b[offMinRecoveryTLI:])
	return c, nil
}
