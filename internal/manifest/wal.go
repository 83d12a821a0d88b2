package manifest

import (
	"errors"
	"fmt"
	"strings"
)

// CheckWAL reports an error unless the streamed WAL covers every WAL range
// of m. For each timeline, streamedFrom is the LSN from which WAL of that
// timeline is on disk and streamedTo the LSN up to which it is. A range is
// covered when its timeline has streamedFrom <= Start and End <= streamedTo.
//
// The server writes one range per timeline the backup spans: the backup's
// starting timeline from the backup's start LSN, and each later timeline
// from where it began; every range runs up to the backup's end LSN or to
// where the next timeline branched off. All of that WAL is needed to make
// the backup consistent.
func CheckWAL(m *Manifest, streamedFrom, streamedTo map[uint32]LSN) error {
	if m == nil {
		return errors.New("check wal: no manifest")
	}
	var gaps []string
	for _, r := range m.WALRanges {
		from, okFrom := streamedFrom[r.Timeline]
		to, okTo := streamedTo[r.Timeline]
		switch {
		case !okFrom || !okTo:
			gaps = append(gaps, fmt.Sprintf("timeline %d needs %s-%s, none streamed", r.Timeline, r.Start, r.End))
		case from > r.Start || to < r.End:
			gaps = append(gaps, fmt.Sprintf("timeline %d needs %s-%s, streamed %s-%s", r.Timeline, r.Start, r.End, from, to))
		}
	}
	if len(gaps) > 0 {
		return fmt.Errorf("streamed WAL does not cover the backup: %s", strings.Join(gaps, "; "))
	}
	return nil
}
