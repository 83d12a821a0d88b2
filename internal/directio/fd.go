package directio

import (
	"os"

	"golang.org/x/sys/unix"
)

// setDirect turns O_DIRECT on or off for an open file. Linux lets F_SETFL
// change O_DIRECT; a filesystem without direct I/O answers EINVAL.
func setDirect(f *os.File, on bool) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		var flags int
		flags, serr = unix.FcntlInt(fd, unix.F_GETFL, 0)
		if serr != nil {
			return
		}
		if on {
			flags |= unix.O_DIRECT
		} else {
			flags &^= unix.O_DIRECT
		}
		_, serr = unix.FcntlInt(fd, unix.F_SETFL, flags)
	})
	if err != nil {
		return err
	}
	return serr
}

// flushAfter is how many buffered bytes of a file may be dirty before its
// writeback is started, like PostgreSQL's checkpoint_flush_after: the final
// fsync then finds little left to write, and the disk works while the
// stream goes on.
const flushAfter = 8 << 20

// startWriteback asks the kernel to start writing a range of f out, without
// waiting for it (sync_file_range SYNC_FILE_RANGE_WRITE). It is only a hint:
// durability still comes from fsync, so errors are ignored.
func startWriteback(f *os.File, off, n int64) {
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE)
		})
	}
}

// reserve allocates f's blocks up to size (fallocate, which also sets the
// size), so that its direct writes are overwrites within the file: ext4
// and XFS run those side by side, while writes that extend a file take
// the inode's lock one at a time. Only a hint: a filesystem without
// fallocate, or one that is full, answers the writes themselves.
func reserve(f *os.File, size int64) {
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			unix.Fallocate(int(fd), 0, 0, size)
		})
	}
}
