package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/pg-standby/pg-standby/internal/basebackup"
	"github.com/pg-standby/pg-standby/internal/progress"
)

// walSegmentsReserved is the WAL counted for the copy's duration: the
// segments streamed between the backup's start and end land in pg_wal,
// at least the start's and the end's. More is written when the primary is
// busy: this is a floor, not an estimate.
const walSegmentsReserved = 2

// target is one place the copy writes to and what it needs there.
type target struct {
	what string // "the data directory", "tablespace 16385"
	dir  string
	need int64
}

// filesystem sums the targets on one file system.
type filesystem struct {
	targets []target
	need    int64 // bytes the copy writes
	reuse   int64 // bytes already in place that the copy overwrites
	free    int64 // bytes available to this (unprivileged) user
}

// checkSpace compares, before the first write, what the copy needs on each
// file system (the primary's size estimate per tablespace from BASE_BACKUP,
// plus the WAL floor on the data directory's) with what is free there plus
// what a retry overwrites in place (files already written: the writer
// rewrites them where they are). A shortfall is refused with the figures.
// What is in place is only summed where the free space alone falls short:
// that walk stats every file, 60,000 on a schema-per-tenant database.
func (b *attempt) checkSpace(start basebackup.Started) error {
	var targets []target
	for _, ts := range start.Tablespaces {
		if ts.SizeKB < 0 {
			continue // the server gave no estimate
		}
		t := target{what: "the data directory", dir: b.in.DataDir, need: ts.SizeKB * 1024}
		if ts.OID != 0 {
			local := ts.Location
			if m, ok := b.opt.TablespaceMapping[ts.Location]; ok {
				local = m
			}
			t = target{what: fmt.Sprintf("tablespace %d", ts.OID), dir: filepath.Clean(local), need: ts.SizeKB * 1024}
		} else {
			t.need += walSegmentsReserved * b.segSize
		}
		targets = append(targets, t)
	}
	systems := map[uint64]*filesystem{}
	var order []uint64
	for _, t := range targets {
		dev, free, err := statTarget(t.dir)
		if err != nil {
			return fmt.Errorf("free space for %s (%s): %w", t.what, t.dir, err)
		}
		fsys, ok := systems[dev]
		if !ok {
			fsys = &filesystem{free: free}
			systems[dev] = fsys
			order = append(order, dev)
		}
		fsys.targets = append(fsys.targets, t)
		fsys.need += t.need
	}
	var short []string
	for _, dev := range order {
		f := systems[dev]
		if f.need <= f.free {
			continue // enough whatever is in place: no walk of what is there
		}
		for _, t := range f.targets {
			f.reuse += inPlace(t.dir)
		}
		if f.need > f.free+f.reuse {
			short = append(short, f.describe())
		}
	}
	if len(short) == 0 {
		return nil
	}
	return configErr("not enough free space for the copy (nothing was written): %s", strings.Join(short, "; "))
}

func (f *filesystem) describe() string {
	var parts []string
	for _, t := range f.targets {
		parts = append(parts, fmt.Sprintf("%s %s needs %s", t.what, t.dir, progress.Bytes(t.need)))
	}
	return fmt.Sprintf("on the file system of %s, %s (the primary's estimate, with %d WAL segments for the data directory), "+
		"but %s is free and %s already written there can be reused: free %s more there, or put it elsewhere (--tablespace-mapping for a tablespace)",
		f.targets[0].dir, strings.Join(parts, ", "), walSegmentsReserved, progress.Bytes(f.free), progress.Bytes(f.reuse),
		progress.Bytes(f.need-f.free-f.reuse))
}

// statTarget returns the device and the space available (to this user) of
// dir, or of its nearest existing parent when dir does not exist yet.
func statTarget(dir string) (uint64, int64, error) {
	for p := dir; ; p = filepath.Dir(p) {
		var st unix.Stat_t
		err := unix.Stat(p, &st)
		if errors.Is(err, unix.ENOENT) && p != filepath.Dir(p) {
			continue
		}
		if err != nil {
			return 0, 0, err
		}
		var sfs unix.Statfs_t
		if err := unix.Statfs(p, &sfs); err != nil {
			return 0, 0, err
		}
		return st.Dev, int64(sfs.Bavail) * sfs.Bsize, nil
	}
}

// inPlace sums the blocks of the regular files under dir (links not
// followed): what an earlier attempt wrote, overwritten in place or, for
// pg_wal, removed before the copy starts.
func inPlace(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			}
		}
		return nil
	})
	return n
}
