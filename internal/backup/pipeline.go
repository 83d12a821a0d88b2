package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg-standby/pg-standby/internal/basebackup"
	"github.com/pg-standby/pg-standby/internal/decompress"
	"github.com/pg-standby/pg-standby/internal/directio"
	"github.com/pg-standby/pg-standby/internal/durable"
	"github.com/pg-standby/pg-standby/internal/extract"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/manifest"
	"github.com/pg-standby/pg-standby/internal/progress"
	"github.com/pg-standby/pg-standby/internal/replconn"
	"github.com/pg-standby/pg-standby/internal/tarstream"
	"github.com/pg-standby/pg-standby/internal/walstream"
)

// stream is the basebackup.Handler: it demultiplexes the COPY stream, builds
// a chain per archive (parser → writer), and collects the manifest.
type stream struct {
	b       *attempt
	ctx     context.Context
	cancel  context.CancelCauseFunc
	root    *os.Root
	cfg     *extract.Config
	res     *extract.Result
	walConn *pgconn.PgConn

	start    basebackup.Start
	spaces   []*space
	archives map[string]bool
	chain    io.WriteCloser
	method   string // server-side compression, "" for none
	inMan    bool
	man      *os.File // the manifest as it arrives, spooled to manifestSpool
	manLen   int64
	manBound int64 // set at the manifest's start, when every file has been sent

	recorded bool // this attempt's count is in basebackup.signal

	recv    *walstream.Receiver
	walDone chan error
}

// Started claims the tablespaces, resets what an earlier attempt left, and
// starts WAL streaming from the backup's start.
func (s *stream) Started(start basebackup.Start) error {
	s.start = start
	s.b.started = &start
	// Locations are checked before the space they offer is counted: a
	// refused one (the root directory, another cluster's) is never walked.
	spaces, err := s.b.planTablespaces(s.root, start.Tablespaces)
	if err != nil {
		return err
	}
	if err := s.b.checkSpace(start); err != nil {
		return err
	}
	if err := s.b.claimTablespaces(s.root, spaces); err != nil {
		return err
	}
	s.spaces = spaces
	if len(spaces) == 0 {
		s.b.useSyncfs(s.cfg.Syncer)
	}
	for _, sp := range spaces {
		s.res.Links[sp.link] = sp.local
	}
	// First write of this attempt: record what the instance keeps and count it.
	s.b.pending.Recorded, s.b.pending.Keep, s.b.pending.Written = true, s.b.kept, true
	s.b.pending.Attempts++
	s.b.opt.Progress.Attempt.Store(int64(s.b.pending.Attempts))
	if err := instance.WritePending(s.root, s.b.pending, s.b.fileMode); err != nil {
		return err
	}
	s.recorded = true
	if err := resetForAttempt(s.root); err != nil {
		return err
	}
	walDir, err := s.root.OpenRoot("pg_wal")
	if err != nil {
		return fmt.Errorf("open pg_wal: %w", err)
	}
	s.recv = walstream.New(s.walConn, walstream.Options{
		Dir: walDir, FileMode: s.b.fileMode, SegmentSize: s.b.segSize, Slot: s.b.slotForWAL(),
	})
	s.walDone = make(chan error, 1)
	go func() {
		defer walDir.Close()
		err := s.recv.Run(s.ctx, start.Timeline, start.LSN)
		if err != nil {
			s.cancel(fmt.Errorf("WAL streaming failed: %w", err))
		}
		s.walDone <- err
	}()
	var total int64
	for _, ts := range start.Tablespaces {
		if ts.SizeKB > 0 {
			total += ts.SizeKB * 1024
		}
	}
	s.b.opt.Progress.Total.Store(total)
	s.b.opt.Progress.StartLSN.Store(uint64(start.LSN))
	s.b.opt.Progress.SetPhase(progress.Copying)
	s.b.log.Info("backup started", "start_lsn", start.LSN.String(), "timeline", start.Timeline,
		"tablespaces", len(spaces), "estimated_bytes", total)
	return nil
}

// Message routes one CopyData message.
func (s *stream) Message(m basebackup.Message) error {
	switch m := m.(type) {
	case basebackup.Data:
		if s.inMan {
			if s.manLen+int64(len(m.Bytes)) > s.manBound {
				return &manifest.FormatError{Err: fmt.Errorf("backup manifest from the primary: more than %d bytes, "+
					"more than any PostgreSQL server writes for the %d files it sent: a broken or hostile server", s.manBound, len(s.res.Files))}
			}
			if _, err := s.man.Write(m.Bytes); err != nil {
				return fmt.Errorf("write %s: %w", manifestSpool, err)
			}
			s.manLen += int64(len(m.Bytes))
			return nil
		}
		if s.chain == nil {
			return basebackup.Violation("archive data before any archive started")
		}
		_, err := s.chain.Write(m.Bytes)
		return err
	case basebackup.NewArchive:
		if s.inMan {
			return basebackup.Violation("an archive after the manifest")
		}
		if err := s.closeChain(); err != nil {
			return err
		}
		return s.openChain(m)
	case basebackup.ManifestStart:
		if s.inMan {
			return basebackup.Violation("a second manifest")
		}
		s.inMan = true
		if err := s.closeChain(); err != nil {
			return err
		}
		s.manBound = manifestBound(s.res)
		return s.spoolManifest()
	}
	return nil
}

// copyMemoryLimit is the Go runtime's soft memory limit while copying
// (issue 13: peak RSS ≤ 32 MiB on every shape).
const copyMemoryLimit = 20 << 20

// manifestBound is the most manifest a server writes for the files sent: the
// manifest comes after the last archive.
func manifestBound(res *extract.Result) int64 {
	var pathBytes int64
	for p := range res.Files {
		pathBytes += int64(len(p))
	}
	return manifest.SizeBound(len(res.Files), pathBytes)
}

func (s *stream) closeChain() error {
	if s.chain == nil {
		return nil
	}
	c := s.chain
	s.chain = nil
	return c.Close()
}

// openChain checks an archive's name against the tablespace list and builds
// its chain back to front: writer, then tar parser.
func (s *stream) openChain(m basebackup.NewArchive) error {
	if s.archives[m.Name] {
		return basebackup.Violation("archive %q sent twice", m.Name)
	}
	s.archives[m.Name] = true
	root, prefix := s.root, ""
	suffix := decompress.Methods[s.method]
	if m.TablespacePath == "" {
		if m.Name != "base.tar"+suffix {
			return basebackup.Violation("unexpected archive %q for the data directory (want base.tar%s)", m.Name, suffix)
		}
	} else {
		var sp *space
		for _, x := range s.spaces {
			if x.primary == m.TablespacePath {
				sp = x
			}
		}
		if sp == nil || m.Name != strconv.FormatUint(uint64(sp.oid), 10)+".tar"+suffix {
			return basebackup.Violation("archive %q for %q matches no tablespace the server listed", m.Name, m.TablespacePath)
		}
		root, prefix = sp.root, sp.link+"/"
	}
	links := map[string]string{}
	if prefix == "" {
		for _, sp := range s.spaces {
			links[sp.link] = sp.local
		}
	}
	s.b.log.Debug("receiving archive", "archive", m.Name, "location", root.Name())
	var stage tarstream.Stage = extract.NewWriter(s.cfg, s.res, root, prefix, links)
	if prefix == "" {
		stage = newAutoConfFilter(stage, s.res, s.cfg.NewHash, s.b.keepPrimary, s.b.log)
	}
	var chain io.WriteCloser = tarstream.NewParser(stage)
	if s.method != "" {
		d, err := decompress.New(s.method, chain)
		if err != nil {
			return err
		}
		chain = d
	}
	s.chain = chain
	return nil
}

// useSyncfs lets one syncfs make the copy durable when the data directory
// is all its filesystem holds; otherwise every file is fsynced.
func (b *attempt) useSyncfs(sy *durable.Syncer) {
	if !durable.SyncfsReportsErrors() {
		return
	}
	if sole, err := durable.SoleOnFS(b.in.DataDir); err != nil || !sole {
		return
	}
	if sy.UseSyncfs(b.in.DataDir) == nil {
		b.log.Info("the data directory is all its filesystem holds: one syncfs makes the copy durable")
	}
}

// copy streams the backup and WAL, then verifies, syncs and hands over.
func (b *attempt) copy(ctx context.Context, main, walConn *pgconn.PgConn) (_ *Result, err error) {
	root, err := os.OpenRoot(b.in.DataDir)
	if err != nil {
		return nil, fmt.Errorf("open data directory: %w", err)
	}
	defer root.Close()
	// Modes follow the primary's data_directory_mode whatever umask the
	// worker inherited (the unit's UMask=0077 would drop group access).
	defer syscall.Umask(syscall.Umask(0o777 &^ int(b.dirMode)))
	alg, err := manifest.ParseAlgorithm(b.opt.ManifestChecksums)
	if err != nil {
		return nil, configErr("manifest checksums: %w", err)
	}
	kept := b.kept
	// basebackup.signal is this instance's lock-free state: never the primary's.
	keep := func(p string) bool {
		return p == instance.BackupSignal || slices.Contains(kept, p) || inKeptDir(kept, p)
	}
	syncer := durable.NewSyncer(b.opt.SyncWorkers, 0)
	defer syncer.Wait()
	files, err := directio.NewQueue(directio.Config{
		Buffered: b.opt.DirectIO != nil && !*b.opt.DirectIO, Finished: syncer.Sync,
		Written: &b.opt.Progress.Written, Unchanged: &b.opt.Progress.Unchanged,
	})
	if err != nil {
		return nil, err
	}
	defer files.Close()
	cfg := &extract.Config{
		FileMode: b.fileMode, DirMode: b.dirMode, Keep: keep,
		Divert: map[string]string{instance.PgControl: instance.PgControlPending},
		Files:  files, Syncer: syncer, Progress: b.opt.Progress,
	}
	if alg != manifest.None {
		cfg.NewHash = alg.NewHash
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	s := &stream{b: b, ctx: ctx, cancel: cancel, root: root, cfg: cfg, res: extract.NewResult(), walConn: walConn, archives: map[string]bool{}}
	defer func() {
		for _, sp := range s.spaces {
			sp.root.Close()
		}
	}()
	defer s.dropManifest()
	defer func() {
		if s.walDone != nil {
			cancel(errors.New("backup ended"))
			<-s.walDone
		}
	}()

	b.opt.Progress.SetPhase(progress.Checkpoint)
	opts := basebackup.Options{
		Label: b.label(), Checkpoint: b.opt.Checkpoint, ManifestChecksums: alg.String(), MaxRateKB: max(b.opt.MaxRateKB, 0), // NoMaxRate: none
	}
	if method, detail, _ := strings.Cut(b.opt.Compression, ":"); method != "" && method != "none" {
		s.method, opts.Compression, opts.CompressionDetail = method, method, detail
	}
	// Uncompressed, the data path is one goroutine receiving and one mostly
	// waiting on the disk: more Ps only spin looking for work, CPU a primary
	// on the same host could use (2 cores: 7 % faster, 17 % less CPU). A
	// decompression stage wants its own core. GOMAXPROCS set by hand wins.
	if s.method == "" && os.Getenv("GOMAXPROCS") == "" {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	}
	// The default GC lets the heap reach twice what is live; with 60,000
	// files (~12 MB live while the manifest is checked) that is most of the
	// peak RSS. A soft limit makes the GC run sooner only near it; it never
	// fails an allocation. GOMEMLIMIT set by hand wins.
	if os.Getenv("GOMEMLIMIT") == "" {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(copyMemoryLimit))
	}
	// A failure after this attempt started writing is recorded in
	// basebackup.signal, for pg-standby status when no worker runs.
	defer func() {
		if err != nil && s.recorded {
			b.pending.LastError, b.pending.LastFailure = failureText(err), time.Now()
			if werr := instance.WritePending(root, b.pending, b.fileMode); werr != nil {
				b.log.Warn("could not record the failure in "+instance.BackupSignal, "error", werr)
			}
		}
	}()
	end, err := basebackup.Run(ctx, main, opts, s)
	if cerr := s.closeChain(); err == nil {
		err = cerr
	}
	if ferr := files.Close(); err == nil {
		err = ferr
	}
	if n, first := files.Refused(); n > 0 {
		b.log.Info("the filesystem refused direct I/O; those files were written through the page cache", "files", n, "first", first)
	}
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
			return nil, cause
		}
		return nil, err
	}
	if !s.inMan {
		return nil, basebackup.Violation("the server sent no manifest")
	}
	b.opt.Progress.EndLSN.Store(uint64(end.LSN))
	b.opt.Progress.SetPhase(progress.WaitingWAL)
	b.log.Info("archives received; waiting for WAL up to the end position", "end_lsn", end.LSN.String())
	s.recv.Stop(end.LSN)
	werr := <-s.walDone
	s.walDone = nil
	if werr != nil {
		return nil, fmt.Errorf("WAL streaming failed: %w", werr)
	}
	b.opt.Progress.WALTo.Store(uint64(s.recv.Flushed()))

	b.opt.Progress.SetPhase(progress.Verifying)
	if err := b.verify(s, kept); err != nil {
		return nil, err
	}
	if err := durableManifest(root, s); err != nil {
		return nil, err
	}
	removed, err := b.prune(s, kept)
	if err != nil {
		return nil, err
	}

	b.opt.Progress.SetPhase(progress.Syncing)
	if err := syncer.Wait(); err != nil {
		return nil, err
	}
	if err := syncDirs(s); err != nil {
		return nil, err
	}

	b.opt.Progress.SetPhase(progress.Handover)
	if b.opt.CopyOnly {
		if err := finishCopyOnly(root); err != nil {
			return nil, err
		}
	} else {
		if err := b.adjustAutoConf(ctx, root); err != nil {
			return nil, err
		}
		if b.in.Debian == nil {
			if err := instance.EnsureAuthFiles(root, b.conf, b.fileMode, b.log); err != nil {
				return nil, err
			}
		}
		if err := instance.Handover(root, b.fileMode, "", b.log); err != nil {
			return nil, err
		}
	}
	b.opt.Progress.SetPhase(progress.Done)
	var bytes int64
	for _, f := range s.res.Files {
		bytes += f.Size
	}
	return &Result{
		Primary: replconn.Address(b.connCfg), SystemID: b.sys.SystemID, Start: s.start.LSN, End: end.LSN, Timeline: end.Timeline,
		Files: len(s.res.Files), Bytes: bytes, Written: b.opt.Progress.Written.Load(), Unchanged: b.opt.Progress.Unchanged.Load(),
		Removed: removed, Kept: kept,
	}, nil
}

// inKeptDir reports whether p is in a subdirectory that holds kept
// configuration (an include_dir in the data directory): a file the primary
// adds there would be read as the instance's own, so it is not written.
func inKeptDir(kept []string, p string) bool {
	dir := path.Dir(p)
	if dir == "." {
		return false
	}
	for _, k := range kept {
		if path.Dir(k) == dir {
			return true
		}
	}
	return false
}

func (b *attempt) label() string {
	if b.opt.Label != "" {
		return b.opt.Label
	}
	return "pg-standby " + b.in.DataDir
}

// slotForWAL is the slot WAL streams from: the instance's own, or the temporary one.
func (b *attempt) slotForWAL() string {
	if b.slot != "" {
		return b.slot
	}
	return b.tempSlot
}
