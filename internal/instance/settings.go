package instance

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pg-standby/pg-standby/internal/decompress"
	"github.com/pg-standby/pg-standby/internal/pgconf"
)

// Settings are the backup options an instance stores as pg_standby.*
// settings (init writes them, run reads them); a zero field is unset. The
// rules each one obeys are here and nowhere else: init checks its flags,
// run its flags and the stored values, the BASE_BACKUP command its options,
// each with the Check functions below.
type Settings struct {
	Checkpoint        string // fast or spread
	MaxRateKB         int64  // kB/s, MinMaxRateKB to MaxMaxRateKB
	Compression       string // METHOD[:DETAIL], or none
	CreateSlot        bool
	DirectIO          *bool
	ManifestChecksums string
	TablespaceMapping map[string]string
}

// The server's bounds on MAX_RATE, in kB/s (32 kB/s to 1 GB/s).
const (
	MinMaxRateKB = 32
	MaxMaxRateKB = 1048576
)

// CheckCheckpoint checks a BASE_BACKUP checkpoint mode.
func CheckCheckpoint(mode string) error {
	if mode != "fast" && mode != "spread" {
		return errors.New("want fast or spread")
	}
	return nil
}

// CheckMaxRate checks a send-rate limit in kB/s (0, no limit, is the caller's).
func CheckMaxRate(kb int64) error {
	if kb < MinMaxRateKB || kb > MaxMaxRateKB {
		return fmt.Errorf("want %d to %d kB/s", MinMaxRateKB, MaxMaxRateKB)
	}
	return nil
}

// SplitCompression splits METHOD[:DETAIL] into a method pg-standby can
// decompress and its detail; "" and "none" are no compression (method "").
func SplitCompression(v string) (method, detail string, err error) {
	method, detail, _ = strings.Cut(v, ":")
	if method == "" || method == "none" {
		return "", "", nil
	}
	if _, ok := decompress.Methods[method]; !ok {
		return "", "", errors.New("want gzip, lz4 or zstd, optionally with :DETAIL (e.g. zstd:level=3)")
	}
	return method, detail, nil
}

// Fill sets every field s leaves unset from conf's pg_standby.* setting,
// checked; an error names the setting, its file and line.
func (s *Settings) Fill(conf *pgconf.Config) error {
	bad := func(st pgconf.Setting, err error) error {
		return fmt.Errorf("%s in %s line %d: %w", st.Name, st.File, st.Line, err)
	}
	if st, ok := conf.Get("pg_standby.checkpoint"); ok && s.Checkpoint == "" {
		if CheckCheckpoint(st.Value) != nil {
			return bad(st, fmt.Errorf("%q is not fast or spread", st.Value))
		}
		s.Checkpoint = st.Value
	}
	if st, ok := conf.Get("pg_standby.max_rate"); ok && s.MaxRateKB == 0 {
		n, err := strconv.ParseInt(st.Value, 10, 64)
		if err != nil {
			return bad(st, fmt.Errorf("%q is not a number of kB/s", st.Value))
		}
		s.MaxRateKB = n // its range is the BASE_BACKUP command's to check
	}
	if st, ok := conf.Get("pg_standby.create_slot"); ok && !s.CreateSlot {
		on, err := pgconf.ParseBool(st.Value)
		if err != nil {
			return bad(st, err)
		}
		s.CreateSlot = on
	}
	if st, ok := conf.Get("pg_standby.direct_io"); ok && s.DirectIO == nil {
		on, err := pgconf.ParseBool(st.Value)
		if err != nil {
			return bad(st, err)
		}
		s.DirectIO = &on
	}
	if st, ok := conf.Get("pg_standby.compression"); ok && s.Compression == "" {
		s.Compression = st.Value
	}
	if st, ok := conf.Get("pg_standby.manifest_checksums"); ok && s.ManifestChecksums == "" {
		s.ManifestChecksums = st.Value
	}
	if st, ok := conf.Get("pg_standby.tablespace_mapping"); ok && len(s.TablespaceMapping) == 0 {
		m, err := ParseMapping(st.Value)
		if err != nil {
			return bad(st, err)
		}
		s.TablespaceMapping = m
	}
	return nil
}
