package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/pg-standby/pg-standby/internal/basebackup"
	"github.com/pg-standby/pg-standby/internal/durable"
	"github.com/pg-standby/pg-standby/internal/extract"
)

// space is one tablespace of the backup and where it goes here.
type space struct {
	oid     uint32
	primary string // location on the primary
	local   string // location here, after mapping
	link    string // pg_tblspc/<oid>
	root    *os.Root
}

// planTablespaces decides every tablespace's local location and checks them
// all, writing nothing. A location must be missing, empty, or hold what an
// earlier attempt of this instance wrote (proved by this instance's
// pg_tblspc/<oid> link already pointing at it): anything else may belong to
// another cluster, maybe the primary itself, and is refused, never deleted.
func (b *attempt) planTablespaces(root *os.Root, list []basebackup.Tablespace) ([]*space, error) {
	// A mapping that matches nothing is most likely a typo: say so first.
	var have []string
	for _, ts := range list {
		if ts.OID != 0 {
			have = append(have, ts.Location)
		}
	}
	for old, new := range b.opt.TablespaceMapping {
		if !slices.Contains(have, old) {
			return nil, configErr("tablespace mapping %s=%s names no tablespace of the primary (its tablespaces are at: %s)",
				old, new, strings.Join(have, ", "))
		}
	}
	var spaces []*space
	for _, ts := range list {
		if ts.OID == 0 {
			continue
		}
		local, mapped := b.opt.TablespaceMapping[ts.Location]
		if !mapped {
			local = ts.Location
		}
		sp := &space{oid: ts.OID, primary: ts.Location, local: filepath.Clean(local), link: "pg_tblspc/" + strconv.FormatUint(uint64(ts.OID), 10)}
		if !mapped {
			if err := allowedLocation(sp); err != nil {
				return nil, err
			}
		}
		if err := b.checkLocation(root, sp, spaces); err != nil {
			return nil, err
		}
		spaces = append(spaces, sp)
	}
	return spaces, nil
}

// claimTablespaces creates the planned locations and this instance's
// pg_tblspc links to them.
func (b *attempt) claimTablespaces(root *os.Root, spaces []*space) error {
	// The locations first: one that cannot be created (permissions) then
	// fails the attempt before anything is written in the data directory.
	for _, sp := range spaces {
		if err := os.MkdirAll(sp.local, b.dirMode); err != nil {
			return fmt.Errorf("create tablespace location %s: %w", sp.local, err)
		}
		if err := durable.SyncPath(filepath.Dir(sp.local)); err != nil {
			return err
		}
	}
	if err := root.Mkdir("pg_tblspc", b.dirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create pg_tblspc: %w", err)
	}
	for _, sp := range spaces {
		if err := extract.EnsureSymlink(root, sp.link, sp.local); err != nil {
			return err
		}
		r, err := os.OpenRoot(sp.local)
		if err != nil {
			return fmt.Errorf("open tablespace location %s: %w", sp.local, err)
		}
		sp.root = r
	}
	if len(spaces) > 0 {
		if err := durable.SyncDir(root, "pg_tblspc"); err != nil {
			return err
		}
	}
	return nil
}

func (b *attempt) checkLocation(root *os.Root, sp *space, others []*space) error {
	refuse := func(reason, hint string) error {
		return &Error{Kind: Refused, Err: fmt.Errorf("tablespace %d (at %s on the primary): location %s %s; %s", sp.oid, sp.primary, sp.local, reason, hint)}
	}
	mapHint := fmt.Sprintf("map it to an empty directory with --tablespace-mapping=%s=/new/location", sp.primary)
	if !filepath.IsAbs(sp.local) {
		return configErr("tablespace mapping for %s: %s is not an absolute path", sp.primary, sp.local)
	}
	if within(sp.local, b.in.DataDir) || within(b.in.DataDir, sp.local) {
		return refuse("overlaps the data directory "+b.in.DataDir, mapHint)
	}
	for _, o := range others {
		if within(sp.local, o.local) || within(o.local, sp.local) {
			return refuse(fmt.Sprintf("overlaps tablespace %d's location %s", o.oid, o.local), mapHint)
		}
	}
	entries, err := os.ReadDir(sp.local)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return &Error{Kind: Refused, Err: fmt.Errorf("tablespace %d: cannot read location %s: %w", sp.oid, sp.local, err)}
	case len(entries) == 0:
		return nil
	}
	if target, err := root.Readlink(sp.link); err == nil && filepath.Clean(target) == sp.local {
		return nil // written by an earlier attempt of this instance
	}
	return refuse("is not empty and was not written by an earlier attempt of this instance",
		"pg-standby never deletes files it did not write: "+mapHint+", or empty it yourself if it is garbage")
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}
