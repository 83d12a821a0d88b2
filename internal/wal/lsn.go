// Package wal holds the WAL facts shared by the backup and the WAL receiver:
// locations (LSNs), segment numbers and segment file names.
package wal

import (
	"fmt"
	"strconv"
	"strings"
)

// LSN is a WAL location: a byte position in the WAL stream.
type LSN uint64

// ParseLSN parses PostgreSQL's "X/Y" text form as pg_lsn_in does: each half
// 1 to 8 hex digits, either case; zero-padded halves ("0/02000028", as newer
// servers print them) are accepted.
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	h, err1 := parseHalf(hi)
	l, err2 := parseHalf(lo)
	if !ok || err1 != nil || err2 != nil {
		if len(s) > 40 { // hostile input must not make huge messages
			s = s[:40] + "..."
		}
		return 0, fmt.Errorf("bad WAL location %q: want X/Y, each 1 to 8 hex digits", s)
	}
	return LSN(h<<32 | l), nil
}

func parseHalf(s string) (uint64, error) {
	if len(s) < 1 || len(s) > 8 || strings.ContainsAny(s, "+-_xX") {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseUint(s, 16, 32)
}

// String prints the location as PostgreSQL does (%X/%X).
func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint32(l)) }
