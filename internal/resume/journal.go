// Package resume keeps the durable record of which files a base backup
// attempt has completely written and fsynced, so that the next attempt (on a
// PostgreSQL 17+ primary with summarize_wal) asks only for the blocks changed
// since (docs/incremental.md).
//
// The journal is one append-only file in the data directory. Each record is
//
//	length uint32 | crc32c uint32 | body (length bytes)
//	body: kind uint8 | timeline uint32 | start LSN uint64 | size int64 | path
//
// little-endian, after an 8-byte file magic. A record whose length is out of
// bounds, that is cut short, or whose CRC-32C does not match ends the
// journal: it can only be the last one (a crash tore it), because Open cuts
// the file back to its last good record before appending anything.
//
// Fsync policy: every Append is one write(2) followed by fdatasync(2) before
// it returns, so a record the caller was told is written survives a crash.
// The caller batches: it appends a Forget record before it modifies a file
// that a Complete record lists, and writes Complete records after its own
// fsync of those files (durable.Syncer), with AppendUnsynced: such a record
// may be lost to a power cut (its file comes again), never kept without its
// file, and a SIGKILL loses nothing once write(2) returned.
//
// Written records come earlier, once every write of a file returned and
// before its fsync: true only while the kernel that took those writes runs.
// So each attempt first records the boot it runs in (a Boot record), and a
// Written entry is worth something only to a later attempt in the same
// boot, after that attempt made the file durable itself; PostgreSQL's crash
// recovery trusts a dead backend's unsynced writes the same way
// (SyncDataDirectory in src/backend/storage/file/fd.c).
package resume

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/pg-standby/pg-standby/internal/wal"
)

// Name is the journal's file name in the data directory.
const Name = "pg-standby.resume"

// Bounds on what Load reads: a path as long as MAXPGPATH, and a journal of
// at most MaxSize bytes (about ten million records).
const (
	MaxPath = 1024
	MaxSize = 1 << 30
)

var fileMagic = [8]byte{'p', 'g', 's', 'b', 'r', 'j', 0, 1}

const fixedBody = 1 + 4 + 8 + 8

// Kind is what a record says about its path.
type Kind uint8

const (
	// Complete: the file has Size bytes, completely written and fsynced
	// by an attempt that started at StartLSN on Timeline.
	Complete Kind = 1
	// Forget: the file is no longer known complete (it is about to be
	// modified, or was found wrong); only a later Complete lists it again.
	Forget Kind = 2
	// Written: every write(2) of the file's Size bytes returned, by the
	// attempt that started at StartLSN on Timeline, in the boot of the last
	// Boot record before it; not yet known durable.
	Written Kind = 3
	// Boot: the records after it come from a process of the boot whose
	// boot ID is Path (BootID).
	Boot Kind = 4
)

// Record is one journal entry.
type Record struct {
	Kind     Kind
	Path     string
	Size     int64
	StartLSN wal.LSN
	Timeline uint32
}

// Entry is what Load knows of a complete file.
type Entry struct {
	Size     int64
	StartLSN wal.LSN // the earliest start LSN among the attempts that completed it since its last Forget
	Timeline uint32  // the timeline of that attempt
	// Boot is "" for a file recorded Complete (durable). For one recorded
	// only Written, it is the boot ID of that attempt ("?" when the journal
	// named none): the file is complete only if that boot still runs, and
	// durable only once the reader syncs it.
	Boot string
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (k Kind) valid() bool { return k >= Complete && k <= Boot }

func encode(dst []byte, r Record) ([]byte, error) {
	if !r.Kind.valid() {
		return dst, fmt.Errorf("journal record for %q: kind %d", r.Path, r.Kind)
	}
	if r.Path == "" || len(r.Path) > MaxPath || r.Size < 0 {
		return dst, fmt.Errorf("journal record for %q (size %d): path empty or longer than %d bytes, or negative size", r.Path, r.Size, MaxPath)
	}
	le := binary.LittleEndian
	body := make([]byte, 0, fixedBody+len(r.Path))
	body = append(body, byte(r.Kind))
	body = le.AppendUint32(body, r.Timeline)
	body = le.AppendUint64(body, uint64(r.StartLSN))
	body = le.AppendUint64(body, uint64(r.Size))
	body = append(body, r.Path...)
	dst = le.AppendUint32(dst, uint32(len(body)))
	dst = le.AppendUint32(dst, crc32.Checksum(body, castagnoli))
	return append(dst, body...), nil
}

// errTorn ends a journal read: the rest of the file is not trusted.
var errTorn = errors.New("torn record")

// next reads one record from br; errTorn for a bad or short one, io.EOF at a
// clean end.
func next(br *bufio.Reader, buf []byte) (Record, int, error) {
	var head [8]byte
	if n, err := io.ReadFull(br, head[:]); err != nil {
		if err == io.EOF && n == 0 {
			return Record{}, 0, io.EOF
		}
		return Record{}, 0, errTorn
	}
	le := binary.LittleEndian
	n := le.Uint32(head[:])
	if n < fixedBody || n > fixedBody+MaxPath {
		return Record{}, 0, errTorn
	}
	body := buf[:n]
	if _, err := io.ReadFull(br, body); err != nil {
		return Record{}, 0, errTorn
	}
	if crc32.Checksum(body, castagnoli) != le.Uint32(head[4:]) {
		return Record{}, 0, errTorn
	}
	r := Record{
		Kind:     Kind(body[0]),
		Timeline: le.Uint32(body[1:]),
		StartLSN: wal.LSN(le.Uint64(body[5:])),
		Size:     int64(le.Uint64(body[13:])),
		Path:     string(body[fixedBody:]),
	}
	if !r.Kind.valid() || r.Size < 0 {
		return Record{}, 0, errTorn
	}
	return r, 8 + int(n), nil
}

// replay reads the journal from f's start: the state per path, and the
// offset just past the last good record.
func replay(f *os.File) (map[string]Entry, int64, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if st.Size() > MaxSize {
		return nil, 0, fmt.Errorf("journal of %d bytes: more than %d", st.Size(), MaxSize)
	}
	entries := map[string]Entry{}
	if st.Size() < int64(len(fileMagic)) {
		return entries, 0, nil // new, or torn before the magic landed
	}
	br := bufio.NewReader(io.NewSectionReader(f, 0, st.Size()))
	var magic [8]byte
	if _, err := io.ReadFull(br, magic[:]); err != nil || magic != fileMagic {
		return nil, 0, fmt.Errorf("journal %s: not a pg-standby resume journal (bad magic)", f.Name())
	}
	off := int64(len(fileMagic))
	buf := make([]byte, fixedBody+MaxPath)
	boot := "?"
	for {
		r, n, err := next(br, buf)
		if err != nil {
			return entries, off, nil // io.EOF or errTorn: off is the good end
		}
		off += int64(n)
		if r.Kind == Boot {
			boot = r.Path
			continue
		}
		apply(entries, r, boot)
	}
}

// apply folds r, written in boot, into entries.
func apply(entries map[string]Entry, r Record, boot string) {
	if r.Kind == Forget {
		delete(entries, r.Path)
		return
	}
	if r.Kind == Complete {
		boot = ""
	}
	e, ok := entries[r.Path]
	if ok && e.StartLSN <= r.StartLSN {
		e.Size, e.Boot = r.Size, boot // the file was rewritten; keep the earliest start
		entries[r.Path] = e
		return
	}
	entries[r.Path] = Entry{Size: r.Size, StartLSN: r.StartLSN, Timeline: r.Timeline, Boot: boot}
}

// Journal is an open journal, ready to append.
type Journal struct {
	f *os.File
}

// openFile opens dir/name with O_NOFOLLOW and checks it is a regular file
// with one link owned by this process's user: the worker runs as the data
// directory's owner, and nobody else may plant the journal.
func openFile(dir *os.File, name string, flags int) (*os.File, error) {
	fd, err := unix.Openat(int(dir.Fd()), name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir.Name() + "/" + name, Err: err}
	}
	f := os.NewFile(uintptr(fd), dir.Name()+"/"+name)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "fstat", Path: f.Name(), Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink != 1 || st.Uid != uint32(os.Geteuid()) {
		f.Close()
		return nil, fmt.Errorf("journal %s: not a regular file with one link owned by uid %d", f.Name(), os.Geteuid())
	}
	return f, nil
}

// Load reads the journal dir/name: per path, the file's last known complete
// state. A missing journal is an empty one.
func Load(dir *os.File, name string) (map[string]Entry, error) {
	f, err := openFile(dir, name, unix.O_RDONLY)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]Entry{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, _, err := replay(f)
	return entries, err
}

// Open opens (creating if need be) the journal dir/name for appending, after
// cutting off a torn last record, and returns what it held. The caller
// fsyncs dir once after a first creation (durable.SyncDir).
func Open(dir *os.File, name string) (*Journal, map[string]Entry, error) {
	f, err := openFile(dir, name, unix.O_RDWR|unix.O_CREAT)
	if err != nil {
		return nil, nil, err
	}
	entries, end, err := replay(f)
	if err == nil && end == 0 {
		_, err = f.WriteAt(fileMagic[:], 0)
		end = int64(len(fileMagic))
	}
	if err == nil {
		err = f.Truncate(end)
	}
	if err == nil {
		_, err = f.Seek(end, io.SeekStart)
	}
	if err == nil {
		err = unix.Fdatasync(int(f.Fd()))
	}
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("open journal %s: %w", f.Name(), err)
	}
	return &Journal{f: f}, entries, nil
}

// Append writes recs in one write and fdatasyncs before returning.
func (j *Journal) Append(recs ...Record) error {
	if err := j.AppendUnsynced(recs...); err != nil {
		return err
	}
	if err := unix.Fdatasync(int(j.f.Fd())); err != nil {
		return fmt.Errorf("fdatasync journal %s: %w", j.f.Name(), err)
	}
	return nil
}

// AppendUnsynced writes recs in one write and returns without fdatasync:
// for Complete records of files already durable, where waiting for a
// journal commit only delays the record a SIGKILL would lose. The next
// Append's fdatasync, or a syncfs of the filesystem, makes them durable; a
// crash before that tears or drops them, and Open cuts them off.
func (j *Journal) AppendUnsynced(recs ...Record) error {
	var buf []byte
	for _, r := range recs {
		var err error
		if buf, err = encode(buf, r); err != nil {
			return err
		}
	}
	if _, err := j.f.Write(buf); err != nil {
		return fmt.Errorf("append to journal %s: %w", j.f.Name(), err)
	}
	return nil
}

// Forget durably unlists path: call it before the file is modified.
func (j *Journal) Forget(path string) error {
	return j.Append(Record{Kind: Forget, Path: path})
}

// Close closes the journal file.
func (j *Journal) Close() error { return j.f.Close() }

// Earliest is the earliest start LSN among entries, and its timeline: the
// start of the single WAL range of the manifest uploaded for them. ok is
// false when entries is empty.
func Earliest(entries map[string]Entry) (lsn wal.LSN, tli uint32, ok bool) {
	for _, e := range entries {
		if !ok || e.StartLSN < lsn {
			lsn, tli, ok = e.StartLSN, e.Timeline, true
		}
	}
	return lsn, tli, ok
}
