package incremental

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg-standby/pg-standby/internal/replconn"
)

// MinMajor is the first PostgreSQL major with incremental backup.
const MinMajor = 17

// The SQLSTATEs this package classifies by.
const (
	// sqlstateNotInPrerequisiteState (55000) is every refusal of
	// BASE_BACKUP (INCREMENTAL) that a full backup avoids: summarize_wal
	// off (basebackup.c, parse_basebackup_options), no manifest uploaded,
	// summaries missing or incomplete for the range, a timeline not in the
	// server's history or not matching it (basebackup_incremental.c,
	// PrepareForIncrementalBackup).
	sqlstateNotInPrerequisiteState = "55000"
	// sqlstateInternal (XX000) is what the server's manifest parser raises
	// (errmsg_internal without errcode: manifest_report_error), including
	// a version 1 manifest and a system identifier that is not the server's.
	sqlstateInternal = "XX000"
)

// Reasons a FallbackError gives.
var (
	ErrUnsupportedVersion = errors.New("the primary's PostgreSQL is older than 17: no incremental backup")
	ErrSummarizeWALOff    = errors.New("summarize_wal is off on the primary: no incremental backup (enable it with ALTER SYSTEM SET summarize_wal = on and a reload)")
	ErrRefused            = errors.New("the primary cannot take this incremental backup (summarize_wal off, WAL summaries missing for the range, or a timeline not in its history)")
	ErrManifestRejected   = errors.New("the primary rejected the uploaded manifest")
)

// FallbackError says incremental backup does not apply to this primary or
// this prior state; the caller takes a full backup instead (file-level delta
// over the directory, as today). Reason is one of the Err* values above;
// Err, when set, is the server's error (a *pgconn.PgError).
type FallbackError struct {
	Reason error
	Err    error
}

func (e *FallbackError) Error() string {
	if e.Err == nil {
		return e.Reason.Error()
	}
	return e.Reason.Error() + ": " + e.Err.Error()
}

// Unwrap gives both the reason and the server's error to errors.Is/As.
func (e *FallbackError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Reason}
	}
	return []error{e.Reason, e.Err}
}

// Classify turns the server's error from BASE_BACKUP (INCREMENTAL) into a
// *FallbackError when a full backup is the answer (SQLSTATE 55000); other
// errors come back unchanged. 55000 also covers refusals a full backup
// meets too (wal_level minimal): then the full attempt fails with its own
// error, one attempt later.
func Classify(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == sqlstateNotInPrerequisiteState {
		return &FallbackError{Reason: ErrRefused, Err: err}
	}
	return err
}

// Server is what ProbeServer learns over a replication connection.
type Server struct {
	Major        int
	SummarizeWAL bool
	Params       Params
}

// ServerMajor is the major version of the server conn reached, from the
// server_version it reported at startup ("17.2", "18beta1", "17.2 (Debian
// 17.2-1)"); 0 when it reported none that starts with a number.
func ServerMajor(conn *pgconn.PgConn) int {
	return majorOf(conn.ParameterStatus("server_version"))
}

func majorOf(v string) int {
	end := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(v)
	}
	major, _ := strconv.Atoi(v[:end])
	return major
}

// ProbeSettings are the settings ProbeServer reads.
var ProbeSettings = []string{"summarize_wal", "block_size", "segment_size"}

// ProbeServer tells from the SHOW answers of the primary of the given major
// (ServerMajor; SHOW works on a walsender) whether incremental backup can
// apply: a *FallbackError when the major is below 17 or
// summarize_wal is off; otherwise the block and segment sizes the
// increments will use.
func ProbeServer(set replconn.Settings, major int) (Server, error) {
	s := Server{Major: major}
	if s.Major < MinMajor {
		return s, &FallbackError{Reason: ErrUnsupportedVersion}
	}
	v, err := set.Get("summarize_wal")
	if err != nil {
		return s, err
	}
	s.SummarizeWAL = v == "on"
	if s.Params, err = probeParams(set); err != nil {
		return s, err
	}
	if !s.SummarizeWAL {
		return s, &FallbackError{Reason: ErrSummarizeWALOff}
	}
	return s, nil
}

func probeParams(set replconn.Settings) (Params, error) {
	var p Params
	bs, err := set.Get("block_size")
	if err != nil {
		return p, err
	}
	if p.BlockSize, err = strconv.Atoi(bs); err != nil {
		return p, fmt.Errorf("block_size %q: %w", bs, err)
	}
	seg, err := set.Get("segment_size")
	if err != nil {
		return p, err
	}
	n, err := parseSize(seg)
	if err != nil || p.BlockSize <= 0 || n%int64(p.BlockSize) != 0 || n/int64(p.BlockSize) > 1<<31 {
		return p, fmt.Errorf("segment_size %q with block_size %d: not a whole number of blocks", seg, p.BlockSize)
	}
	p.SegmentBlocks = uint32(n / int64(p.BlockSize))
	return p, p.Check()
}

// parseSize reads a size as SHOW prints it: "1GB", "8192", "512MB", "16kB".
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"kB", 1 << 10}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = rest, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("size %q", s)
	}
	return n * mult, nil
}

// Upload sends manifest with UPLOAD_MANIFEST on a replication connection;
// the server keeps it for the next BASE_BACKUP (INCREMENTAL) on the same
// connection. A manifest the server's parser rejects (SQLSTATE XX000) is a
// *FallbackError with ErrManifestRejected: a full backup still works.
func Upload(ctx context.Context, conn *pgconn.PgConn, manifest []byte) error {
	return UploadFrom(ctx, conn, bytes.NewReader(manifest))
}

// UploadFrom is Upload of the manifest r gives (a *ManifestReader renders
// it as it goes). An error reading r makes CopyFrom abort the upload
// (CopyFail); the caller checks its reader's own error first.
func UploadFrom(ctx context.Context, conn *pgconn.PgConn, r io.Reader) error {
	_, err := conn.CopyFrom(ctx, r, "UPLOAD_MANIFEST")
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == sqlstateInternal || pe.Code == sqlstateNotInPrerequisiteState) {
		return &FallbackError{Reason: ErrManifestRejected, Err: err}
	}
	return fmt.Errorf("UPLOAD_MANIFEST: %w", err)
}
