// Package directio writes file contents through one goroutine from aligned
// buffers. Files of DirectMin bytes or more are written with O_DIRECT, so
// the kernel neither copies the data into its cache nor has a backlog of
// dirty pages to write back at fsync time; their space is reserved when
// they are opened, and two of their writes wait for the device at once
// (Config.Inflight), where one at a time would leave it idle in between. Smaller files go through the
// page cache, where a write does not wait for the device (a 20,000-table
// primary: a direct write of an 8 KiB file took 0.2 ms, median, on the
// writing goroutine); when their writeback starts is the Finished
// callback's choice (durable.Syncer). A
// filesystem that refuses O_DIRECT gets buffered writes.
//
// Where a file from an earlier attempt is already in place, each buffer is
// first compared with the bytes on disk and written only if it differs.
package directio
