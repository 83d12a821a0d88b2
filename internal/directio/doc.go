// Package directio writes file contents around the page cache: bytes are
// gathered into aligned buffers and written with O_DIRECT by one goroutine,
// so the stream never waits on the disk and the kernel neither copies the
// data into its cache nor has a backlog of dirty pages to write back at
// fsync time. A filesystem that refuses O_DIRECT gets buffered writes.
//
// Where a file from an earlier attempt is already in place, each buffer is
// first compared with the bytes on disk and written only if it differs.
package directio
