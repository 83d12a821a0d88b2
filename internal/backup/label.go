package backup

import (
	"github.com/pg-standby/pg-standby/internal/basebackup"
	"github.com/pg-standby/pg-standby/internal/incremental"
	"github.com/pg-standby/pg-standby/internal/manifest"
	"github.com/pg-standby/pg-standby/internal/tarstream"
)

// labelName is the member the server writes the backup's label to.
const labelName = "backup_label"

// labelFilter is the base archive's stage, when the attempt resumes, that
// drops the INCREMENTAL FROM lines from backup_label before it is written
// (postgres refuses to start from an incremental label), as
// pg_combinebackup's write_backup_label does and where astreamer_inject
// edits the stream. It sits behind the checksum stage, which sees the
// label as sent, and keeps the edited label's size and CRC-32C for the
// result manifest, so nothing is read back.
type labelFilter struct {
	next tarstream.Stage
	done func(incremental.ManifestFile) // gets the written label's entry

	in     bool
	member tarstream.Member
	buf    []byte
}

func newLabelFilter(next tarstream.Stage, done func(incremental.ManifestFile)) *labelFilter {
	return &labelFilter{next: next, done: done}
}

// Write implements tarstream.Stage.
func (l *labelFilter) Write(part tarstream.Part, m *tarstream.Member, p []byte) error {
	if part == tarstream.Header && m.Type == tarstream.File && m.Name == labelName {
		if m.Size > incremental.MaxBackupLabel {
			return basebackup.Violation("the primary's %s is %d bytes, more than pg-standby reads (%d)", labelName, m.Size, incremental.MaxBackupLabel)
		}
		l.in, l.member, l.buf = true, *m, l.buf[:0]
		return nil
	}
	if !l.in {
		return l.next.Write(part, m, p)
	}
	switch part {
	case tarstream.Contents:
		l.buf = append(l.buf, p...)
		return nil
	case tarstream.Trailer:
		l.in = false
		return l.emit()
	}
	return l.next.Write(part, m, p)
}

func (l *labelFilter) emit() error {
	out, err := incremental.StripIncrementalLabel(l.buf)
	if err != nil {
		return err
	}
	h := manifest.CRC32C.NewHash()
	h.Write(out)
	m := l.member
	m.Size = int64(len(out))
	if err := l.next.Write(tarstream.Header, &m, nil); err != nil {
		return err
	}
	if len(out) > 0 {
		if err := l.next.Write(tarstream.Contents, &m, out); err != nil {
			return err
		}
	}
	if err := l.next.Write(tarstream.Trailer, &m, nil); err != nil {
		return err
	}
	l.done(incremental.ManifestFile{Path: labelName, Size: m.Size, Algorithm: manifest.CRC32C, Checksum: h.Sum(nil)})
	return nil
}

// WriteFrom implements tarstream.SourceStage: only backup_label stops here.
func (l *labelFilter) WriteFrom(m *tarstream.Member, src tarstream.Source, n int) error {
	if l.in {
		return tarstream.Chunks(l, m, src, n)
	}
	return tarstream.WriteFrom(l.next, m, src, n)
}

// Close implements tarstream.Stage: a member cut short is the parser's to report.
func (l *labelFilter) Close() error { return l.next.Close() }
