package backup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg-standby/pg-standby/internal/basebackup"
	"github.com/pg-standby/pg-standby/internal/incremental"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/manifest"
	"github.com/pg-standby/pg-standby/internal/resume"
	"github.com/pg-standby/pg-standby/internal/tarstream"
)

// incPlan is a resuming attempt (issue 15): the files an earlier attempt
// completed were uploaded as a manifest, and the server sends them as
// changed blocks only (docs/incremental.md).
type incPlan struct {
	listed map[string]resume.Entry // manifest paths uploaded, with what the journal said
	// spaces: per pg_tblspc/<oid> with listed files, the location they were
	// found in at upload time (checkSpacesListed holds the plan to it).
	spaces map[string]priorSpace
	params incremental.Params
	reused *atomic.Int64 // bytes kept from the prior files (the tracker's Reused)
	// Counted by the archive chains, read once Stream returned: each chain
	// runs on one goroutine (Stream's, or its decompressor's, which Close
	// joins) and archives come one after the other, so no lock is needed.
	rebuilt   int                       // files reconstructed in place
	rebuiltTS int                       // of them, in tablespaces
	changed   int                       // of them, files the increment changed
	whole     int                       // listed files the server sent whole
	blocks    int64                     // blocks received in increments
	label     *incremental.ManifestFile // backup_label as written (labelFilter)
	held      incremental.Held          // changed blocks waiting for their group's Forget (rebuild)
	result    *spool                    // the result manifest (startResult)
}

// summarizeHint makes the summarize_wal advice once per data directory and process.
var summarizeHint sync.Map

// prior is what the directory offers a resuming attempt, read before the
// attempt writes anything (readPrior).
type prior struct {
	files  int                     // the journal's entries, or the walk's (resync)
	listed map[string]resume.Entry // of them, what an increment may patch
	spaces map[string]priorSpace   // see incPlan
	srv    incremental.Server
	rs     *instance.Resync // a resync's record, with seed its relation files
	seed   []resume.Record
}

// readPrior decides whether this attempt resumes: the journal lists files
// still on disk with their recorded size (or, on a resynced standby, its
// relation files are walked), and the primary can take an incremental
// backup. It only reads. nil means a full backup; only a failure that would
// fail a full backup too is an error.
func (b *attempt) readPrior(root *os.Root) (*prior, error) {
	b.opt.Progress.SetKind("")
	if b.otherSystem { // the journal lists another cluster's files (checkCopiedSystem)
		return nil, nil
	}
	entries, err := loadJournal(root)
	if err != nil {
		b.log.Warn("the resume journal of an earlier attempt is unreadable; taking a full backup", "error", err)
		return nil, nil
	}
	rs := b.resyncPrior(root, entries)
	if len(entries) == 0 && rs == nil {
		return nil, nil
	}
	pr := &prior{rs: rs}
	pr.srv, err = incremental.ProbeServer(b.settings, b.major)
	var fe *incremental.FallbackError
	if errors.As(err, &fe) {
		b.fallbackNote(fe, len(entries))
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if rs != nil {
		spaces, closeSpaces := b.resyncSpaces(root)
		pr.seed, err = incremental.PriorFiles(root, spaces, rs.Prior, rs.PriorTLI)
		closeSpaces()
		if err != nil {
			return nil, err
		}
		entries = seedEntries(pr.seed)
	}
	pr.files = len(entries)
	pr.listed, pr.spaces = b.keepListable(root, entries, rs != nil)
	if len(pr.listed) == 0 {
		return nil, nil
	}
	return pr, nil
}

// planResume writes a resync's walk as the journal, then uploads the
// manifest of the listed files on main. nil means a full backup.
func (b *attempt) planResume(ctx context.Context, main *pgconn.PgConn, root *os.Root, pr *prior) (*incPlan, error) {
	if pr == nil {
		return nil, nil
	}
	if rs := pr.rs; rs != nil {
		if err := seedJournal(root, pr.seed); err != nil {
			return nil, err
		}
		b.log.Info("resync: the directory's relation files are the prior state", "files", pr.files, "prior_lsn", rs.Prior.String(), "prior_timeline", rs.PriorTLI)
	}
	listed := pr.listed
	var fe *incremental.FallbackError
	if err := b.uploadManifest(ctx, main, listed); err != nil {
		if errors.As(err, &fe) {
			b.log.Warn("the primary refused the manifest of the files already copied; taking a full backup", "error", err)
			return nil, nil
		}
		return nil, err
	}
	kind := fmt.Sprintf("resuming: %d of %d files kept, changed blocks only", len(listed), pr.files)
	b.opt.Progress.SetKind(kind)
	lsn, tli, _ := resume.Earliest(listed)
	b.log.Info(kind, "attempt", "resume", "since_lsn", lsn.String(), "since_timeline", tli)
	return &incPlan{listed: listed, spaces: pr.spaces, params: pr.srv.Params, reused: &b.opt.Progress.Reused}, nil
}

func (b *attempt) fallbackNote(fe *incremental.FallbackError, files int) {
	if !errors.Is(fe, incremental.ErrSummarizeWALOff) {
		b.log.Info("cannot resume by changed blocks; taking a full backup over the directory", "reason", fe.Error())
		return
	}
	if _, done := summarizeHint.LoadOrStore(b.in.DataDir, true); !done {
		b.log.Warn("summarize_wal is off on the primary: the retry receives every byte again; with summarize_wal = on "+
			"(ALTER SYSTEM SET summarize_wal = on; SELECT pg_reload_conf()) it would receive only the blocks changed "+
			"in the files already copied", "files_copied", files)
	}
}

func loadJournal(root *os.Root) (map[string]resume.Entry, error) {
	dir, err := root.Open(".")
	if err != nil {
		return nil, fmt.Errorf("open data directory: %w", err)
	}
	defer dir.Close()
	return resume.Load(dir, resume.Name)
}

// keepListable keeps the entries an increment may patch whose file still has
// the recorded size: in the data directory, or for pg_tblspc/<oid>/… in the
// location this instance's link names (priorSpaces), where an earlier
// attempt wrote it. Entries just walked (a resync's) are not looked at again.
// An entry only Written is kept if its boot still runs, once its file is
// fsynced here: then it is as complete as one recorded Complete.
func (b *attempt) keepListable(root *os.Root, entries map[string]resume.Entry, walked bool) (map[string]resume.Entry, map[string]priorSpace) {
	listed := map[string]resume.Entry{}
	spaces := b.priorSpaces(root, entries)
	boot := resume.BootID()
	var dirs subdirs // sorted paths: each directory is opened once
	for _, p := range slices.Sorted(maps.Keys(entries)) {
		e := entries[p]
		if !incremental.Listable(p) || (e.Boot != "" && e.Boot != boot) {
			continue
		}
		r, rel := root, p
		if link, ok := tablespaceLink(p); ok {
			sp, found := spaces[link]
			if !found {
				continue
			}
			r, rel = sp.root, strings.TrimPrefix(p, link+"/")
		}
		switch {
		case walked, e.Boot == "" && fileHas(&dirs, r, rel, e.Size), e.Boot != "" && b.syncWritten(&dirs, r, rel, e.Size):
			listed[p] = e
		}
	}
	dirs.Close()
	for link, sp := range spaces {
		sp.root.Close()
		sp.root = nil
		spaces[link] = sp
	}
	return listed, spaces
}

// fileHas reports whether rel is a regular file of size bytes, reached
// through directories only: a link inside a tablespace location is never
// followed (the Rebuilder would patch whatever it points to).
func fileHas(dirs *subdirs, r *os.Root, rel string, size int64) bool {
	_, _, _, ok := regularOfSize(dirs, r, rel, size)
	return ok
}

// regularOfSize is fileHas that also gives the file's directory, its name
// there and what Lstat saw.
func regularOfSize(dirs *subdirs, r *os.Root, rel string, size int64) (*os.Root, string, os.FileInfo, bool) {
	dir, name, err := dirs.in(r, rel)
	if err != nil {
		return nil, "", nil, false
	}
	fi, err := dir.Lstat(name)
	return dir, name, fi, err == nil && fi.Mode().IsRegular() && fi.Size() == size
}

// syncWritten is fileHas for a file recorded Written by an attempt that
// died before its fsync: it also makes the file durable, and the fsync
// reports a writeback error since that attempt's writes.
func (b *attempt) syncWritten(dirs *subdirs, r *os.Root, rel string, size int64) bool {
	dir, name, seen, ok := regularOfSize(dirs, r, rel, size)
	if !ok {
		return false
	}
	f, err := dir.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !os.SameFile(seen, fi) || fi.Size() != size {
		return false
	}
	if err := f.Sync(); err != nil {
		b.log.Warn("a file an earlier attempt wrote cannot be made durable; it is copied again", "file", f.Name(), "error", err)
		return false
	}
	return true
}

// tablespaceLink is "pg_tblspc/<oid>" for a manifest path in a tablespace.
func tablespaceLink(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, "pg_tblspc/")
	if !ok {
		return "", false
	}
	oid, _, ok := strings.Cut(rest, "/")
	return "pg_tblspc/" + oid, ok
}

// uploadManifest uploads the manifest of the listed files, rendered while
// CopyFrom reads it: one WAL range starting and ending at the earliest
// start among the attempts that wrote them (the server only needs its end
// not after the new start).
func (b *attempt) uploadManifest(ctx context.Context, main *pgconn.PgConn, listed map[string]resume.Entry) error {
	sysID, err := strconv.ParseUint(b.sys.SystemID, 10, 64)
	if err != nil {
		return fmt.Errorf("system identifier %q: %w", b.sys.SystemID, err)
	}
	lsn, tli, _ := resume.Earliest(listed)
	paths := slices.Sorted(maps.Keys(listed)) // the order RenderManifest's callers sort in
	next := func() (incremental.ManifestFile, bool) {
		if len(paths) == 0 {
			return incremental.ManifestFile{}, false
		}
		p := paths[0]
		paths = paths[1:]
		return incremental.ManifestFile{Path: p, Size: listed[p].Size}, true
	}
	r := incremental.NewManifestReader(sysID, []manifest.WALRange{{Timeline: tli, Start: lsn, End: lsn}}, next)
	err = incremental.UploadFrom(ctx, main, r)
	if rerr := r.Err(); rerr != nil {
		return rerr
	}
	return err
}

// startBackup is basebackup.Start; when the server refuses the incremental
// range (55000) it drops the plan and starts a full backup at once, on the
// same connection: not a failed attempt.
func (b *attempt) startBackup(ctx context.Context, main *basebackup.Conn, opts basebackup.Options, t *dest) (*basebackup.Backup, error) {
	bk, err := basebackup.Start(ctx, main, opts)
	var fe *incremental.FallbackError
	if t.inc == nil || !errors.As(incremental.Classify(err), &fe) {
		return bk, err
	}
	b.log.Warn("the primary cannot send changed blocks for the files already copied; taking a full backup over the directory", "error", err)
	t.inc, opts.Incremental = nil, false
	b.opt.Progress.SetKind("")
	return basebackup.Start(ctx, main, opts)
}

// rebuildStage puts block reconstruction in an archive's chain when the
// attempt resumes; next is what the writer gets.
func (t *dest) rebuildStage(next tarstream.Stage, root *os.Root, prefix string) tarstream.Stage {
	if t.inc == nil {
		return next
	}
	if t.inc.held.Limit == 0 {
		t.inc.held.Limit = heldBytes
	}
	return &rebuild{next: next, root: root, prefix: prefix, inc: t.inc,
		jr: func() *journal { return t.jr }, sync: t.cfg.Syncer.Sync, syncAll: t.cfg.Syncer.SyncAll}
}

// A changed file's blocks wait in memory (up to heldBytes for all) so that
// the files of a group are unlisted by one journal append, one fdatasync,
// instead of one each; a group also ends at groupFiles files, or once its
// files hold groupBytes: what a kill between that append and their
// Complete record makes the next attempt receive whole.
const (
	heldBytes  = 8 << 20
	groupFiles = 256
	groupBytes = 128 << 20
)

// rebuild reconstructs INCREMENTAL.<name> members in place into <name>: the
// file is unlisted in the journal just before its first byte changes, and
// listed again once the Syncer made it durable, like every file the writers
// write; a file the increment leaves as it was keeps its entry and is not
// fsynced again. A listed file sent whole is unlisted too. Changed files
// whose blocks fit in the held memory wait there, untouched, in a group
// that is unlisted, written and handed to the Syncer together (flush).
type rebuild struct {
	next    tarstream.Stage
	root    *os.Root
	prefix  string
	inc     *incPlan
	jr      func() *journal
	sync    func(*os.File, int64)     // durable.Syncer.Sync: fsync, then the journal's Complete
	syncAll func([]*os.File, []int64) // the same for a group, in one batch

	r     *incremental.Rebuilder   // the member being reconstructed
	group []*incremental.Rebuilder // finished, their changes held
	sizes []int64                  // their sizes
	gsize int64                    // their sum
}

func (s *rebuild) Write(part tarstream.Part, m *tarstream.Member, p []byte) error {
	if part == tarstream.Header && m.Type == tarstream.File {
		return s.header(m)
	}
	if part == tarstream.ArchiveEnd {
		if err := s.flush(); err != nil {
			return err
		}
	}
	if s.r == nil {
		return s.next.Write(part, m, p)
	}
	switch part {
	case tarstream.Contents:
		return s.r.Write(p)
	case tarstream.Trailer:
		return s.done()
	}
	return nil
}

// WriteFrom implements tarstream.SourceStage: files sent whole pass on; an
// increment's bytes go to the Rebuilder in the chunks the source lends.
func (s *rebuild) WriteFrom(m *tarstream.Member, src tarstream.Source, n int) error {
	if s.r != nil {
		return tarstream.Chunks(s, m, src, n)
	}
	return tarstream.WriteFrom(s.next, m, src, n)
}

func (s *rebuild) header(m *tarstream.Member) error {
	name, ok := incremental.TargetName(m.Name)
	if !ok {
		// An empty file sent whole for an empty listed one (the server sends
		// empty relation files whole) is the same whatever a kill leaves.
		e, listed := s.inc.listed[s.prefix+m.Name]
		if listed {
			s.inc.whole++
		}
		if listed && (e.Size != 0 || m.Size != 0) {
			if err := s.jr().append(resume.Record{Kind: resume.Forget, Path: s.prefix + m.Name}); err != nil {
				return err
			}
		}
		return s.next.Write(tarstream.Header, m, nil)
	}
	e, listed := s.inc.listed[s.prefix+name]
	if !listed {
		return basebackup.Violation("the primary sent %s, an increment of a file not in the uploaded manifest", m.Name)
	}
	r, err := incremental.NewRebuilder(s.root, name, e.Size, m.Size, s.inc.params)
	if err != nil {
		return fmt.Errorf("in %s: %w", path.Dir(name), err)
	}
	root := s.root
	r.Open = func() (*os.File, error) { return openFile(root, name) }
	r.Hold = &s.inc.held
	forget := resume.Record{Kind: resume.Forget, Path: s.prefix + name}
	r.BeforeChange = func() error { return s.flush(forget) }
	r.MakeRoom = func() error { return s.flush() }
	s.r = r
	return nil
}

// done hands the reconstructed file to the Syncer, which fsyncs it and
// lists it again at this attempt's start, or to the group when its change
// is held.
func (s *rebuild) done() error {
	r := s.r
	f, res, err := r.Finish()
	s.r = nil
	if err != nil {
		return err
	}
	switch {
	case r.Pending():
		s.group = append(s.group, r)
		s.sizes = append(s.sizes, res.Size)
		s.gsize += res.Size
	case res.Changed:
		s.sync(f, res.Size) // exact: Header cut or extended the file to it
	default:
		// Not a byte written: the file is as durable as when it was listed
		// (docs/incremental.md, "Durability"), and its entry stays.
	}
	s.inc.rebuilt++
	if s.prefix != "" {
		s.inc.rebuiltTS++
	}
	if res.Changed {
		s.inc.changed++
	}
	s.inc.reused.Add(int64(res.Kept) * int64(s.inc.params.BlockSize))
	s.inc.blocks += int64(res.Received)
	if len(s.group) >= groupFiles || s.gsize >= groupBytes {
		return s.flush()
	}
	return nil
}

// flush unlists the group's files, and more (a file about to change at
// once), in one durable append, then makes the group's held changes and
// hands its files to the Syncer as one batch.
func (s *rebuild) flush(more ...resume.Record) error {
	recs := more
	for _, r := range s.group {
		recs = append(recs, resume.Record{Kind: resume.Forget, Path: s.prefix + r.Path})
	}
	if err := s.jr().append(recs...); err != nil {
		return err
	}
	files := make([]*os.File, 0, len(s.group))
	var err error
	for _, r := range s.group {
		var f *os.File
		if err == nil {
			f, err = r.Apply()
		} else {
			r.Abort()
		}
		if f != nil {
			files = append(files, f)
		}
	}
	if len(files) == len(s.group) {
		if len(files) > 0 {
			s.syncAll(files, s.sizes)
		}
	} else {
		for _, f := range files {
			f.Close() // unlisted: the next attempt sends them whole
		}
	}
	s.dropGroup()
	return err
}

func (s *rebuild) dropGroup() {
	for _, r := range s.group {
		r.Abort()
	}
	clear(s.group)
	s.group, s.sizes, s.gsize = s.group[:0], s.sizes[:0], 0
	s.inc.held.Reset()
}

// Close drops a group still held (the archive stopped early: its files are
// untouched and keep their entries).
func (s *rebuild) Close() error {
	if s.r != nil {
		s.r.Abort()
		s.r = nil
	}
	s.dropGroup()
	return s.next.Close()
}

// resultSpool is where a resumed attempt's own manifest is written while
// the server's is verified; it becomes backup_manifest in its place.
const resultSpool = instance.Manifest + ".pg-standby-result"

// result writes the result manifest of a resuming attempt, as
// pg_combinebackup's write_manifest.c does, during the verification pass
// over the server's manifest: no second read, no document in memory.
type result struct {
	t    *dest
	bw   *bufio.Writer
	mw   *incremental.ManifestWriter
	dirs subdirs // the manifest lists files directory by directory
	err  error   // the first error: nothing more is written
}

// startResult opens the result manifest when the attempt resumes (nil
// otherwise: its methods then do nothing). The system identifier is the
// one IDENTIFY_SYSTEM gave; verification fails if the server's manifest
// says another.
func (t *dest) startResult(systemID string) (*result, error) {
	if t.inc == nil {
		return nil, nil
	}
	id, err := strconv.ParseUint(systemID, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("system identifier %q: %w", systemID, err)
	}
	out := &spool{root: t.root, name: resultSpool, mode: t.man.mode, log: t.man.log}
	if err := out.create(); err != nil {
		return nil, err
	}
	t.inc.result = out
	bw := bufio.NewWriterSize(out, 64<<10)
	return &result{t: t, bw: bw, mw: incremental.NewManifestWriter(bw, id)}, nil
}

// file writes the result's entry for f, the server's next file.
func (r *result) file(f *manifest.File) {
	if r == nil || r.err != nil {
		return
	}
	e, err := r.entry(f)
	if err == nil {
		err = r.mw.File(&e)
	}
	r.err = err
}

// finish writes the WAL ranges and the Manifest-Checksum.
func (r *result) finish(ranges []manifest.WALRange) error {
	if r == nil {
		return nil
	}
	if r.err == nil {
		r.err = r.mw.Close(ranges)
	}
	if r.err == nil {
		r.err = r.bw.Flush()
	}
	return r.err
}

// close closes the directory the last entry was found in.
func (r *result) close() {
	if r != nil {
		r.dirs.Close()
	}
}

// entry is f, an entry of the server's manifest, under its result
// name: a file sent whole keeps the server's size and checksum (as
// pg_combinebackup copies them); a reconstructed one has its size on disk
// and no checksum, as pg_combinebackup --manifest-checksums=NONE writes it
// (docs/incremental.md, "The result manifest": a read-back checksum would
// cost a read of every kept byte and attest only to what was just written);
// backup_label is as labelFilter wrote it.
func (r *result) entry(f *manifest.File) (incremental.ManifestFile, error) {
	t := r.t
	if f.Path == labelName {
		if t.inc.label == nil {
			return incremental.ManifestFile{}, basebackup.Violation("the primary sent no %s", labelName)
		}
		return *t.inc.label, nil
	}
	name, inc := incremental.TargetName(f.Path)
	if !inc {
		return incremental.ManifestFile{Path: f.Path, Size: f.Size, Algorithm: f.Algorithm, Checksum: f.Checksum}, nil
	}
	root, rel := t.rootOf(name)
	dir, base, err := r.dirs.in(root, rel)
	var fi os.FileInfo
	if err == nil {
		fi, err = dir.Lstat(base)
	}
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("not a regular file (%v)", fi.Mode().Type())
	}
	if err != nil {
		return incremental.ManifestFile{}, fmt.Errorf("result manifest: reconstructed %s: %w", name, err)
	}
	return incremental.ManifestFile{Path: name, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// combine turns what a resuming attempt received into a full backup, as
// pg_combinebackup does: the reconstructed files take their names in what
// was seen (so prune keeps them), and the result manifest, written while
// the server's was verified, becomes backup_manifest (backup_label lost its
// INCREMENTAL lines on its way in: labelFilter).
func (b *attempt) combine(t *dest) error {
	for p, obs := range t.res.Files {
		if target, ok := incremental.TargetName(p); ok {
			if _, dup := t.res.Files[target]; dup {
				return basebackup.Violation("the primary sent both %s and %s", target, p)
			}
			delete(t.res.Files, p)
			t.res.Files[target] = obs
		}
	}
	if t.inc.label == nil {
		return basebackup.Violation("the primary sent no %s", labelName)
	}
	t.man.drop() // the server's manifest describes the increment, not the result
	if err := t.inc.result.commit(); err != nil {
		return err
	}
	b.log.Info("resumed by changed blocks: files reconstructed in place", "reconstructed", t.inc.rebuilt,
		"changed", t.inc.changed, "in_tablespaces", t.inc.rebuiltTS, "listed_sent_whole", t.inc.whole,
		"blocks_received", t.inc.blocks, "bytes_received", b.opt.Progress.Streamed.Load(), "bytes_reused", t.inc.reused.Load())
	return nil
}

// rootOf is the root holding a manifest path, and the path inside it.
func (t *dest) rootOf(p string) (*os.Root, string) {
	for _, sp := range t.spaces {
		if rel, ok := strings.CutPrefix(p, sp.link+"/"); ok {
			return sp.root, rel
		}
	}
	return t.root, p
}

// resyncPrior is the resync record (block mode) when this is the first
// attempt on a resynced standby: no attempt has written and the journal is
// empty (docs/incremental.md, "Resync"). Otherwise nil: a full backup, or
// the journal's resume.
func (b *attempt) resyncPrior(root *os.Root, entries map[string]resume.Entry) *instance.Resync {
	if b.pending.Written || len(entries) > 0 {
		return nil
	}
	rs, ok, err := instance.ReadResync(root)
	if err != nil {
		b.log.Warn("the resync record is unreadable; taking a full backup over the directory", "error", err)
		return nil
	}
	if !ok || rs.Mode != instance.ResyncBlock {
		return nil
	}
	if strconv.FormatUint(rs.SystemID, 10) != b.sys.SystemID {
		b.log.Warn("the resync record is for another system; taking a full backup over the directory", "record_system", rs.SystemID, "primary_system", b.sys.SystemID)
		return nil
	}
	return rs
}

// seedEntries are a resync's walk (incremental.PriorFiles: the directory's
// relation files, and those of the tablespace locations its links name, as
// completed at the prior start) as resume.Load reads them back once
// seedJournal wrote them.
func seedEntries(recs []resume.Record) map[string]resume.Entry {
	entries := make(map[string]resume.Entry, len(recs))
	for _, r := range recs {
		entries[r.Path] = resume.Entry{Size: r.Size, StartLSN: r.StartLSN, Timeline: r.Timeline}
	}
	return entries
}

// seedJournal writes a resync's walk as a fresh journal.
func seedJournal(root *os.Root, recs []resume.Record) error {
	jr, _, err := openJournal(root, true)
	if err != nil {
		return err
	}
	defer jr.close()
	for len(recs) > 0 {
		n := min(len(recs), 4096)
		if err := jr.append(recs[:n]...); err != nil {
			return err
		}
		recs = recs[n:]
	}
	return nil
}
