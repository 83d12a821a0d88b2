package wal

import "fmt"

// ValidSegmentSize reports whether size is a WAL segment size initdb allows:
// a power of two from 1 MiB to 1 GiB.
func ValidSegmentSize(size int64) bool {
	return size >= 1<<20 && size <= 1<<30 && size&(size-1) == 0
}

// SegmentStart is the first location of the segment holding lsn.
func SegmentStart(lsn LSN, segSize int64) LSN { return lsn - lsn%LSN(segSize) }

// SegmentName is the file name of the segment holding lsn on timeline tli:
// 8 hex digits each of timeline, "log" number and segment within the log,
// where a log is 4 GiB of WAL (XLogFileName in xlog_internal.h).
func SegmentName(tli uint32, lsn LSN, segSize int64) string {
	segNo := uint64(lsn) / uint64(segSize)
	perLog := uint64(0x100000000) / uint64(segSize)
	return fmt.Sprintf("%08X%08X%08X", tli, segNo/perLog, segNo%perLog)
}

// HistoryFileName is the name of timeline tli's history file.
func HistoryFileName(tli uint32) string { return fmt.Sprintf("%08X.history", tli) }
