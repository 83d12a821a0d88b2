package incremental

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/pg-standby/pg-standby/internal/resume"
	"github.com/pg-standby/pg-standby/internal/wal"
)

// maxPriorFiles bounds what PriorFiles lists: a cluster with more relation
// segment files than this is not resynced by blocks (the journal would
// outgrow resume's bound first).
const maxPriorFiles = 4 << 20

// PriorFiles lists the relation files of a resynced standby as journal
// records: Complete at the resync record's prior start and timeline, with
// their size now. Only while no attempt has written to the directory is
// that true of every file (basebackup.signal's Written is false): the first
// block-mode attempt appends these to an empty journal, and is then a
// resume. Files under pg_tblspc/OID are read through tablespaces, the root
// of each tablespace location by OID (the caller opens them, as the
// extractor does); links are never followed here. Only Listable files are
// given.
func PriorFiles(data *os.Root, tablespaces map[string]*os.Root, prior wal.LSN, tli uint32) ([]resume.Record, error) {
	var recs []resume.Record
	add := func(root *os.Root, dir, prefix string) error {
		return fs.WalkDir(root.FS(), dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && p == dir {
					return fs.SkipDir
				}
				return err
			}
			name := prefix + p
			if !d.Type().IsRegular() || !Listable(name) {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if len(recs) >= maxPriorFiles {
				return fmt.Errorf("more than %d relation files", maxPriorFiles)
			}
			recs = append(recs, resume.Record{Kind: resume.Complete, Path: name, Size: fi.Size(), StartLSN: prior, Timeline: tli})
			return nil
		})
	}
	for _, dir := range []string{"global", "base"} {
		if err := add(data, dir, ""); err != nil {
			return nil, fmt.Errorf("list prior files: %w", err)
		}
	}
	for oid, root := range tablespaces {
		if !IsOID(oid) {
			return nil, fmt.Errorf("list prior files: tablespace %q is not an OID", oid)
		}
		if err := add(root, ".", path.Join("pg_tblspc", oid)+"/"); err != nil {
			return nil, fmt.Errorf("list prior files of tablespace %s: %w", oid, err)
		}
	}
	for i := range recs {
		recs[i].Path = strings.TrimPrefix(path.Clean(recs[i].Path), "./")
	}
	return recs, nil
}
