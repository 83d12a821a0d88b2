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

// ParseLSN parses PostgreSQL's "X/Y" text form (two hex halves of 32 bits).
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok || hi == "" || lo == "" {
		return 0, fmt.Errorf("bad WAL location %q: want X/Y in hex", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad WAL location %q: want X/Y in hex", s)
	}
	return LSN(h<<32 | l), nil
}

// String prints the location as PostgreSQL does (%X/%X).
func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint32(l)) }
