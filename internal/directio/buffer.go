package directio

import "golang.org/x/sys/unix"

// Align is the alignment O_DIRECT needs for buffer addresses, file offsets
// and lengths: 4096 covers every logical block size Linux block devices
// report (512 or 4096).
const Align = 4096

// DefaultDirectMin is the file size from which O_DIRECT pays: below it, the
// wait for each small synchronous write costs more than the copy into the
// page cache (measured in BenchmarkSmallFiles and on a 20,000-table primary).
const DefaultDirectMin = 1 << 20

// alignedBuffer maps n bytes (a multiple of Align) of anonymous memory:
// page-aligned by construction, and outside the Go heap, so the megabytes
// in flight do not raise the garbage collector's heap goal.
func alignedBuffer(n int) ([]byte, error) {
	return unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
}

// roundUp is n rounded up to a multiple of Align.
func roundUp(n int) int { return (n + Align - 1) &^ (Align - 1) }
