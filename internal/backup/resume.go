package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pg-standby/pg-standby/internal/basebackup"
	"github.com/pg-standby/pg-standby/internal/durable"
	"github.com/pg-standby/pg-standby/internal/incremental"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/resume"
)

// journal records, in the resume journal, the files this attempt has
// completely written and made durable (docs/incremental.md, "Journal"), so
// that a later attempt asks only for the blocks changed since. Appends come
// from the Syncer's completer and from the reconstruction stage.
type journal struct {
	mu    sync.Mutex
	j     *resume.Journal
	start basebackup.Started
	locs  []location
	// skip: paths that are never journal material (kept configuration,
	// the diverted pg_control, WAL).
	skip     func(string) bool
	recorded atomic.Int64
	syncedAt time.Time // the last fdatasync of the journal; under mu
	boot     string    // resume.BootID: "" records nothing Written
}

// writtenMin is the smallest file recorded Written before its fsync: a
// later attempt syncs each such file itself (syncWritten), which for the
// thousand small files of a batch would cost more than their few MB (a
// choice, not measured; docs/incremental.md).
const writtenMin = 1 << 20

// recordSyncEvery bounds what a power cut loses of the Complete records
// written without fdatasync (durable): about a second of progress.
const recordSyncEvery = time.Second

// location maps a directory the writers write into back to manifest paths.
type location struct {
	dir    string // the os.Root name, cleaned, with a trailing slash
	prefix string // "" or "pg_tblspc/<oid>/"
}

// openJournal opens the data directory's resume journal for this attempt.
// fresh drops what earlier attempts recorded first (a full backup: nothing
// of theirs will be used). It returns the entries the journal held.
func openJournal(root *os.Root, fresh bool) (*journal, map[string]resume.Entry, error) {
	if fresh {
		if err := root.Remove(resume.Name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("remove the resume journal of earlier attempts: %w", err)
		}
	}
	dir, err := root.Open(".")
	if err != nil {
		return nil, nil, fmt.Errorf("open data directory for the resume journal: %w", err)
	}
	defer dir.Close()
	j, entries, err := resume.Open(dir, resume.Name)
	if err != nil {
		return nil, nil, err
	}
	if err := durable.SyncDir(root, "."); err != nil {
		j.Close()
		return nil, nil, err
	}
	return &journal{j: j, boot: resume.BootID()}, entries, nil
}

// watch starts recording t's durable files as completed by the attempt that
// started at start: call it before the archives stream.
func (jr *journal) watch(t *dest, start basebackup.Started) {
	jr.start = start
	jr.mu.Lock()
	jr.syncedAt = time.Now() // Open and the Forget records synced it
	jr.mu.Unlock()
	jr.locs = []location{{dir: dirKey(t.root.Name())}}
	for _, sp := range t.spaces {
		jr.locs = append(jr.locs, location{dir: dirKey(sp.root.Name()), prefix: sp.link + "/"})
	}
	jr.skip = func(p string) bool {
		return p == instance.PgControlPending || p == instance.PgControl || strings.HasPrefix(p, "pg_wal/") || t.keep(p)
	}
	t.cfg.Syncer.OnDurable(jr.durable)
	if jr.boot != "" {
		t.cfg.Syncer.OnWritten(writtenMin, jr.written, jr.lost)
	}
}

func dirKey(name string) string { return strings.TrimSuffix(path.Clean(name), "/") + "/" }

// manifestPath is the manifest path of a file the writers named, or false.
func (jr *journal) manifestPath(name string) (string, bool) {
	best := -1
	for i, l := range jr.locs {
		if strings.HasPrefix(name, l.dir) && (best < 0 || len(l.dir) > len(jr.locs[best].dir)) {
			best = i
		}
	}
	if best < 0 {
		return "", false
	}
	return jr.locs[best].prefix + strings.TrimPrefix(name, jr.locs[best].dir), true
}

// durable is the Syncer's completion callback: one Complete record per file
// of the batch, in one write. The files are durable already, so the records
// need no fdatasync of their own to be true, only to outlive a power cut:
// one a second at most (recordSyncEvery), not one per batch on the way from
// a file's last byte to its record, which is what a SIGKILL loses.
func (jr *journal) durable(batch []durable.Synced) error {
	recs := make([]resume.Record, 0, len(batch))
	for _, f := range batch {
		p, ok := jr.manifestPath(f.Name)
		if !ok || jr.skip(p) {
			continue
		}
		recs = append(recs, jr.complete(p, f.Size))
	}
	jr.mu.Lock()
	defer jr.mu.Unlock()
	return jr.appendLocked(recs, time.Since(jr.syncedAt) >= recordSyncEvery)
}

// written is the Syncer's callback for a batch leaving for its fsync: a
// Written record per large file, so that a SIGKILL before the batch is
// durable loses it only if the boot ends too. No fdatasync: after a reboot
// the record is worth nothing anyway.
func (jr *journal) written(batch []durable.Synced) error {
	var recs []resume.Record
	for p, size := range jr.journalFiles(batch) {
		r := jr.complete(p, size)
		r.Kind = resume.Written
		recs = append(recs, r)
	}
	if len(recs) == 0 {
		return nil
	}
	jr.mu.Lock()
	defer jr.mu.Unlock()
	return jr.j.AppendUnsynced(recs...)
}

// lost unlists, durably, the Written files of a batch the Syncer could not
// make durable: their writeback error was reported once, to this attempt,
// and a later attempt's fsync would not see it again.
func (jr *journal) lost(batch []durable.Synced) error {
	var recs []resume.Record
	for p := range jr.journalFiles(batch) {
		recs = append(recs, resume.Record{Kind: resume.Forget, Path: p})
	}
	return jr.append(recs...)
}

// journalFiles yields the manifest path and size of each of batch's files
// the journal records (the Syncer gives OnWritten only those of writtenMin
// bytes or more).
func (jr *journal) journalFiles(batch []durable.Synced) iter.Seq2[string, int64] {
	return func(yield func(string, int64) bool) {
		for _, f := range batch {
			if p, ok := jr.manifestPath(f.Name); ok && !jr.skip(p) && !yield(p, f.Size) {
				return
			}
		}
	}
}

func (jr *journal) complete(p string, size int64) resume.Record {
	return resume.Record{Kind: resume.Complete, Path: p, Size: size, StartLSN: jr.start.LSN, Timeline: jr.start.Timeline}
}

func (jr *journal) append(recs ...resume.Record) error {
	if len(recs) == 0 {
		return nil
	}
	jr.mu.Lock()
	defer jr.mu.Unlock()
	return jr.appendLocked(recs, true)
}

// appendLocked writes recs, and with sync fdatasyncs them before it returns.
func (jr *journal) appendLocked(recs []resume.Record, sync bool) error {
	if len(recs) == 0 {
		return nil
	}
	if !sync {
		if err := jr.j.AppendUnsynced(recs...); err != nil {
			return err
		}
	} else {
		if err := jr.j.Append(recs...); err != nil {
			return err
		}
		jr.syncedAt = time.Now()
	}
	for _, r := range recs {
		if r.Kind == resume.Complete {
			jr.recorded.Add(1)
		}
	}
	return nil
}

// close closes the journal file, keeping what it recorded for the next attempt.
func (jr *journal) close() {
	if jr == nil {
		return
	}
	jr.mu.Lock()
	defer jr.mu.Unlock()
	if jr.j != nil {
		jr.j.Close()
		jr.j = nil
	}
}

// remove drops the journal once the backup is complete: nothing to resume.
func (jr *journal) remove(root *os.Root) error {
	if jr == nil {
		return nil
	}
	jr.close()
	if err := root.Remove(resume.Name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the resume journal: %w", err)
	}
	return durable.SyncDir(root, ".")
}

// startJournal opens the resume journal for this attempt and records into
// it from now on.
// Before PostgreSQL 17 nothing could use it: there is none.
func (b *attempt) startJournal(root *os.Root, t *dest, start basebackup.Started) (*journal, error) {
	if b.major < incremental.MinMajor {
		return nil, nil
	}
	jr, entries, err := openJournal(root, t.inc == nil)
	if err != nil {
		return nil, err
	}
	// What was not uploaded is rewritten whole: no longer known complete.
	// What was uploaded Written, readPrior made durable: Complete now. The
	// Written records to come are of this boot.
	var recs []resume.Record
	for p, e := range entries {
		if l, ok := t.inc.listed[p]; !ok {
			recs = append(recs, resume.Record{Kind: resume.Forget, Path: p})
		} else if e.Boot != "" {
			recs = append(recs, resume.Record{Kind: resume.Complete, Path: p, Size: l.Size, StartLSN: l.StartLSN, Timeline: l.Timeline})
		}
	}
	if jr.boot != "" {
		recs = append(recs, resume.Record{Kind: resume.Boot, Path: jr.boot})
	}
	if err := jr.append(recs...); err != nil {
		jr.close()
		return nil, err
	}
	jr.watch(t, start)
	return jr, nil
}
