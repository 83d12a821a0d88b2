package walstream

import (
	"errors"
	"fmt"
	"os"
	"path"
	"syscall"

	"github.com/pg-standby/pg-standby/internal/durable"
	"github.com/pg-standby/pg-standby/internal/wal"
)

// segmentFile is the segment being written: "<name>.partial" until it is
// complete (or the stream ends), then fsynced and renamed to <name>, as a
// crash must never leave a half-written segment under its final name.
type segmentFile struct {
	dir   *os.Root // the instance's pg_wal
	name  string
	start wal.LSN // first location of the segment
	f     *os.File
}

func createSegment(dir *os.Root, tli uint32, lsn wal.LSN, segSize int64, mode os.FileMode) (*segmentFile, error) {
	start := wal.SegmentStart(lsn, segSize)
	s := &segmentFile{dir: dir, name: wal.SegmentName(tli, start, segSize), start: start}
	f, err := dir.OpenFile(s.name+".partial", os.O_RDWR|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return nil, fmt.Errorf("create WAL segment %s: %w", s.path(), err)
	}
	// Full size up front, like pg_basebackup's padding: recovery and
	// pg_waldump want whole segments; fallocate avoids writing the zeros.
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, segSize); err != nil {
		if !errors.Is(err, syscall.EOPNOTSUPP) {
			f.Close()
			return nil, fmt.Errorf("allocate WAL segment %s: %w", s.path(), err)
		}
		if err := f.Truncate(segSize); err != nil {
			f.Close()
			return nil, fmt.Errorf("size WAL segment %s: %w", s.path(), err)
		}
	}
	s.f = f
	return s, nil
}

func (s *segmentFile) path() string { return path.Join(s.dir.Name(), s.name) }

func (s *segmentFile) write(lsn wal.LSN, p []byte) error {
	if _, err := s.f.WriteAt(p, int64(lsn-s.start)); err != nil {
		return fmt.Errorf("write WAL segment %s: %w", s.path(), err)
	}
	return nil
}

func (s *segmentFile) sync() error {
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("fsync WAL segment %s: %w", s.path(), err)
	}
	return nil
}

// finish makes the segment durable under its final name.
func (s *segmentFile) finish() error {
	err := s.sync()
	if cerr := s.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close WAL segment %s: %w", s.path(), cerr)
	}
	if err != nil {
		return err
	}
	if err := s.dir.Rename(s.name+".partial", s.name); err != nil {
		return fmt.Errorf("rename WAL segment %s: %w", s.path(), err)
	}
	return durable.SyncDir(s.dir, ".")
}

// abandon closes the file without renaming it (the stream failed).
func (s *segmentFile) abandon() { s.f.Close() }
