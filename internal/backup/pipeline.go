package backup

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg-standby/pg-standby/internal/basebackup"
	"github.com/pg-standby/pg-standby/internal/decompress"
	"github.com/pg-standby/pg-standby/internal/directio"
	"github.com/pg-standby/pg-standby/internal/durable"
	"github.com/pg-standby/pg-standby/internal/extract"
	"github.com/pg-standby/pg-standby/internal/incremental"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/manifest"
	"github.com/pg-standby/pg-standby/internal/progress"
	"github.com/pg-standby/pg-standby/internal/replconn"
	"github.com/pg-standby/pg-standby/internal/tarstream"
	"github.com/pg-standby/pg-standby/internal/walstream"
)

// copy streams the backup and WAL, then verifies, syncs and hands over:
// BASE_BACKUP starts (resuming from pr, when readPrior found one), the
// tablespaces are claimed and the attempt recorded, then the archives stream.
func (b *attempt) copy(ctx context.Context, main, walConn *pgconn.PgConn, root *os.Root, pr *prior) (*Result, error) {
	opts, newHash, err := b.backupOptions()
	if err != nil {
		return nil, err
	}
	t, err := b.newTarget(root, opts.Compression, newHash)
	if err != nil {
		return nil, err
	}
	defer t.close()
	if b.opt.Tune != nil {
		defer b.opt.Tune(opts.Compression)()
	}
	if t.inc, err = b.planResume(ctx, main, root, pr); err != nil { // issue 15: resume by changed blocks
		return nil, err
	}
	opts.Incremental = t.inc != nil
	// From here on, the archives are read off the socket into the writers'
	// buffers; the diagnosis of a failure opens a connection of its own.
	conn, err := basebackup.Hijack(ctx, main)
	if err != nil {
		return nil, stopped(ctx, err)
	}
	defer conn.Close()
	b.opt.Progress.SetPhase(progress.Checkpoint)
	bk, err := b.startBackup(ctx, conn, opts, t)
	if err != nil {
		return nil, stopped(ctx, err)
	}
	b.started = &bk.Started
	if err := b.claim(t, bk.Started); err != nil {
		return nil, stopped(ctx, err)
	}
	if err := b.recordAttempt(root); err != nil {
		return nil, stopped(ctx, err)
	}
	if t.jr, err = b.startJournal(root, t, bk.Started); err != nil { // resume journal (issue 15)
		return nil, stopped(ctx, err)
	}
	res, err := b.receive(ctx, t, bk, walConn)
	if err != nil {
		b.recordFailure(root, err)
		return nil, err
	}
	return res, nil
}

// stopped is err or, once ctx ended, why it ended (a stop, or WAL streaming
// that failed): what failed then was only the connection closed to cancel.
func stopped(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
		return cause
	}
	return err
}

// backupOptions are the BASE_BACKUP options of this attempt, and the hash
// its manifest checksums use (nil for none).
func (b *attempt) backupOptions() (basebackup.Options, func() hash.Hash, error) {
	alg, err := manifest.ParseAlgorithm(b.opt.ManifestChecksums)
	if err != nil {
		return basebackup.Options{}, nil, configErr("manifest checksums: %w", err)
	}
	opts := basebackup.Options{
		Label: b.label(), Checkpoint: b.opt.Checkpoint, ManifestChecksums: alg.String(), MaxRateKB: max(b.opt.MaxRateKB, 0), // NoMaxRate: none
	}
	if method, detail, _ := strings.Cut(b.opt.Compression, ":"); method != "" && method != "none" {
		opts.Compression, opts.CompressionDetail = method, detail
	}
	if alg == manifest.None {
		return opts, nil, nil
	}
	return opts, alg.NewHash, nil
}

// claim checks and claims the tablespace locations the server listed.
// Locations are checked before the space they offer is counted: a refused
// one (the root directory, another cluster's) is never walked.
func (b *attempt) claim(t *dest, start basebackup.Started) error {
	spaces, err := b.planTablespaces(t.root, start.Tablespaces)
	if err != nil {
		return err
	}
	if err := b.checkSpacesListed(t.root, t.inc, spaces); err != nil { // issue 15: tablespaces resumed
		return err
	}
	if err := b.checkSpace(start); err != nil {
		return err
	}
	if err := b.claimTablespaces(t.root, spaces); err != nil {
		return err
	}
	t.spaces = spaces
	for _, sp := range spaces {
		t.res.Links[sp.link] = sp.local
	}
	if len(spaces) == 0 {
		b.useSyncfs(t.cfg.Syncer)
	}
	return nil
}

// recordAttempt is the attempt's first write: it records in basebackup.signal
// what the instance keeps and whose files it copies, and counts the attempt.
func (b *attempt) recordAttempt(root *os.Root) error {
	b.pending.Recorded, b.pending.Keep, b.pending.Written = true, b.kept, true
	b.pending.SystemID = b.sys.SystemID
	b.pending.Attempts++
	b.opt.Progress.Attempt.Store(int64(b.pending.Attempts))
	return instance.WritePending(root, b.pending, b.fileMode)
}

// recordFailure records the failure of an attempt that wrote in
// basebackup.signal, for pg-standby status when no worker runs.
func (b *attempt) recordFailure(root *os.Root, err error) {
	b.pending.LastError, b.pending.LastFailure = failureText(err), time.Now()
	if werr := instance.WritePending(root, b.pending, b.fileMode); werr != nil {
		b.log.Warn("could not record the failure in "+instance.BackupSignal, "error", werr)
	}
}

// receive streams the archives into t with WAL beside them, then finishes.
func (b *attempt) receive(ctx context.Context, t *dest, bk *basebackup.Backup, walConn *pgconn.PgConn) (*Result, error) {
	if err := resetForAttempt(t.root); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w, err := b.startWAL(ctx, cancel, t.root, walConn, bk.Started)
	if err != nil {
		return nil, err
	}
	defer func() {
		if w.done != nil {
			cancel(errors.New("backup ended"))
			<-w.done
		}
	}()
	b.reportStart(bk.Started, len(t.spaces))
	end, err := bk.Stream(ctx, t)
	if ferr := t.files.Close(); err == nil {
		err = ferr
	}
	if n, first := t.files.Refused(); n > 0 {
		b.log.Info("the filesystem refused direct I/O; those files were written through the page cache", "files", n, "first", first)
	}
	if err != nil {
		return nil, stopped(ctx, err)
	}
	if err := b.waitWAL(w, end); err != nil {
		return nil, err
	}
	return b.finish(ctx, t, w.recv, bk.Started, end)
}

// walRun is the WAL receiver running beside the archives; done is nil once
// its result was taken.
type walRun struct {
	recv *walstream.Receiver
	done chan error
}

// startWAL streams WAL from the backup's start into pg_wal; a failure
// cancels the attempt with its cause.
func (b *attempt) startWAL(ctx context.Context, cancel context.CancelCauseFunc, root *os.Root, conn *pgconn.PgConn, start basebackup.Started) (*walRun, error) {
	walDir, err := root.OpenRoot("pg_wal")
	if err != nil {
		return nil, fmt.Errorf("open pg_wal: %w", err)
	}
	w := &walRun{done: make(chan error, 1), recv: walstream.New(conn, walstream.Options{
		Dir: walDir, FileMode: b.fileMode, SegmentSize: b.segSize, Slot: b.slotForWAL(),
	})}
	go func() {
		defer walDir.Close()
		err := w.recv.Run(ctx, start.Timeline, start.LSN)
		if err != nil {
			cancel(fmt.Errorf("WAL streaming failed: %w", err))
		}
		w.done <- err
	}()
	return w, nil
}

// waitWAL waits for the WAL up to the backup's end.
func (b *attempt) waitWAL(w *walRun, end basebackup.End) error {
	b.opt.Progress.EndLSN.Store(uint64(end.LSN))
	b.opt.Progress.SetPhase(progress.WaitingWAL)
	b.log.Info("archives received; waiting for WAL up to the end position", "end_lsn", end.LSN.String())
	w.recv.Stop(end.LSN)
	err := <-w.done
	w.done = nil
	if err != nil {
		return fmt.Errorf("WAL streaming failed: %w", err)
	}
	b.opt.Progress.WALTo.Store(uint64(w.recv.Flushed()))
	return nil
}

func (b *attempt) reportStart(start basebackup.Started, spaces int) {
	var total int64
	for _, ts := range start.Tablespaces {
		if ts.SizeKB > 0 {
			total += ts.SizeKB * 1024
		}
	}
	b.opt.Progress.Total.Store(total)
	b.opt.Progress.StartLSN.Store(uint64(start.LSN))
	b.opt.Progress.SetPhase(progress.Copying)
	b.log.Info("backup started", "start_lsn", start.LSN.String(), "timeline", start.Timeline,
		"tablespaces", spaces, "estimated_bytes", total)
}

// finish verifies the copy against the manifest, prunes, syncs and hands
// the directory over as a standby.
func (b *attempt) finish(ctx context.Context, t *dest, recv *walstream.Receiver, start basebackup.Started, end basebackup.End) (*Result, error) {
	b.opt.Progress.SetPhase(progress.Verifying)
	if err := b.verify(t, recv); err != nil {
		return nil, err
	}
	if err := b.commitManifest(t); err != nil {
		return nil, err
	}
	removed, err := b.prune(t)
	if err != nil {
		return nil, err
	}
	b.opt.Progress.SetPhase(progress.Syncing)
	if err := t.cfg.Syncer.Wait(); err != nil {
		return nil, err
	}
	if err := t.syncDirs(); err != nil {
		return nil, err
	}
	if err := t.jr.remove(t.root); err != nil { // complete: nothing to resume
		return nil, err
	}
	if err := b.handover(ctx, t.root); err != nil {
		return nil, err
	}
	// A bare copy (patroni-replica) is no standby yet: say what it is.
	if b.opt.CopyOnly {
		b.opt.Progress.SetPhase(progress.CopyDone)
	} else {
		b.opt.Progress.SetPhase(progress.Done)
	}
	var bytes int64
	for _, f := range t.res.Files {
		bytes += f.Size
	}
	return &Result{
		Primary: replconn.Address(b.connCfg), SystemID: b.sys.SystemID, Start: start.LSN, End: end.LSN, Timeline: end.Timeline,
		Files: len(t.res.Files), Bytes: bytes, Written: b.opt.Progress.Written.Load(), Unchanged: b.opt.Progress.Unchanged.Load(),
		Removed: removed, Kept: b.kept,
	}, nil
}

// commitManifest makes the verified manifest backup_manifest: the
// server's, or a resumed attempt's own (combine).
func (b *attempt) commitManifest(t *dest) error {
	if t.inc != nil {
		return b.combine(t)
	}
	return t.man.commit()
}

func (b *attempt) handover(ctx context.Context, root *os.Root) error {
	b.opt.Progress.SetPhase(progress.Handover)
	if b.opt.CopyOnly {
		return finishCopyOnly(root)
	}
	if err := b.adjustAutoConf(ctx, root); err != nil {
		return err
	}
	if b.in.Debian == nil {
		if err := instance.EnsureAuthFiles(root, b.conf, b.fileMode, b.log); err != nil {
			return err
		}
	}
	return instance.Handover(root, b.fileMode, b.log)
}

// dest is where one attempt's archives go: the data directory, the
// tablespace locations, and what the chains saw. It is the
// basebackup.Receiver of the stream.
type dest struct {
	root     *os.Root
	spaces   []*space
	cfg      *extract.Config
	res      *extract.Result
	files    *directio.Queue
	progress *progress.Tracker // counts the Streamed bytes
	man      *spool
	method   string // server-side compression, "" for none
	newHash  func() hash.Hash
	// keep reports manifest paths whose local copy the instance keeps.
	keep        func(string) bool
	keepPrimary bool
	log         *slog.Logger
	jr          *journal // the resume journal (resume.go)
	inc         *incPlan // set when the attempt resumes by changed blocks (incremental.go)
}

// newTarget makes the shared parts of every chain: the syncer and the
// direct-I/O queue the writers hand file contents to.
func (b *attempt) newTarget(root *os.Root, method string, newHash func() hash.Hash) (*dest, error) {
	syncer := durable.NewSyncer(b.opt.SyncWorkers, 0)
	files, err := directio.NewQueue(directio.Config{
		Buffered: b.opt.DirectIO != nil && !*b.opt.DirectIO, Finished: syncer.Sync,
		Written: &b.opt.Progress.Written, Unchanged: &b.opt.Progress.Unchanged,
	})
	if err != nil {
		syncer.Wait()
		return nil, err
	}
	kept := b.kept
	return &dest{
		root: root, res: extract.NewResult(), files: files, progress: b.opt.Progress,
		cfg:    &extract.Config{FileMode: b.fileMode, DirMode: b.dirMode, Files: files, Syncer: syncer},
		man:    &spool{root: root, name: manifestSpool, mode: b.fileMode, log: b.log},
		method: method, newHash: newHash, keepPrimary: b.keepPrimary, log: b.log,
		// basebackup.signal is this instance's lock-free state: never the primary's.
		keep: func(p string) bool {
			return p == instance.BackupSignal || slices.Contains(kept, p) || inKeptDir(kept, p)
		},
	}, nil
}

func (t *dest) close() {
	t.man.drop()
	if t.inc != nil {
		t.inc.result.drop()
	}
	for _, sp := range t.spaces {
		sp.root.Close()
	}
	t.files.Close()
	t.cfg.Syncer.Wait()
	t.jr.close()
}

// Archive builds one archive's chain back to front, as pg_basebackup's
// CreateBackupStreamer: writer, block reconstruction and backup_label
// filter (a resuming attempt), keep/divert, postgresql.auto.conf filter,
// checksum, tar parser, decompressor. What exists is decided here; no stage
// looks at options. The checksum stage sees the members as the primary sent
// them, before any stage edits what is written.
func (t *dest) Archive(a basebackup.Archive) (io.WriteCloser, error) {
	// The base archive may hold the claimed tablespaces' links, and only those.
	root, prefix, links := t.root, "", t.res.Links
	if a.Tablespace.OID != 0 {
		sp := t.space(a.Tablespace.OID)
		root, prefix, links = sp.root, sp.link+"/", nil
	}
	t.log.Debug("receiving archive", "archive", a.Name, "location", root.Name())
	var next tarstream.Stage = extract.NewWriter(t.cfg, t.res, root, prefix, links)
	// Block reconstruction of INCREMENTAL files (issue 15) goes here: what
	// reaches the writer is the file to write.
	next = t.rebuildStage(next, root, prefix)
	next = extract.NewKeep(next, prefix, t.keep, map[string]string{instance.PgControl: instance.PgControlPending})
	if prefix == "" && t.inc != nil {
		next = newLabelFilter(next, func(f incremental.ManifestFile) { t.inc.label = &f })
	}
	if prefix == "" {
		next = newAutoConfFilter(next, t.keepPrimary, t.log)
	}
	next = extract.NewChecksum(next, t.res, prefix, t.newHash, &t.progress.Streamed)
	var chain io.WriteCloser = tarstream.NewParser(next)
	if t.method != "" {
		d, err := decompress.New(t.method, chain)
		if err != nil {
			return nil, err
		}
		chain = d
	}
	return chain, nil
}

// space is the claimed tablespace of an OID the archive name was checked against.
func (t *dest) space(oid uint32) *space {
	for _, sp := range t.spaces {
		if sp.oid == oid {
			return sp
		}
	}
	return nil
}

// Manifest spools the manifest, bounded by the files the archives sent.
func (t *dest) Manifest() (io.Writer, basebackup.Sent, error) {
	sent := basebackup.Sent{Files: len(t.res.Files)}
	for p := range t.res.Files {
		sent.PathBytes += int64(len(p))
	}
	return t.man, sent, t.man.create()
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
