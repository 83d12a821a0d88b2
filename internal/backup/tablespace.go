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
	"github.com/pg-standby/pg-standby/internal/incremental"
	"github.com/pg-standby/pg-standby/internal/resume"
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

// priorSpace is where an earlier attempt wrote a tablespace's files: the
// target of this instance's pg_tblspc/<oid> link when the manifest went up.
type priorSpace struct {
	location string      // the link's target, cleaned
	id       fs.FileInfo // that directory, to tell it from another at the same path
	root     *os.Root    // open while the files are listed, then closed
}

// priorSpaces opens, for each pg_tblspc/<oid> the journal has relation files
// in, the location this instance's link names. The link was written by
// claimTablespaces after checkLocation, so its target is an absolute path
// outside the data directory; anything else is not listed.
func (b *attempt) priorSpaces(root *os.Root, entries map[string]resume.Entry) map[string]priorSpace {
	spaces := map[string]priorSpace{}
	for p := range entries {
		link, ok := tablespaceLink(p)
		if !ok || !incremental.Listable(p) {
			continue
		}
		if _, seen := spaces[link]; seen {
			continue
		}
		spaces[link] = b.openPriorSpace(root, link) // tried once: a zero value is not listable
	}
	for link, sp := range spaces {
		if sp.root == nil {
			delete(spaces, link)
		}
	}
	return spaces
}

// openPriorSpace opens the location the link root/link names, or gives the
// zero value (not listable): the link must be a symlink to an absolute path
// that neither holds nor is inside the data directory.
func (b *attempt) openPriorSpace(root *os.Root, link string) priorSpace {
	fi, err := root.Lstat(link)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return priorSpace{}
	}
	target, err := root.Readlink(link)
	if err != nil || !filepath.IsAbs(target) {
		return priorSpace{}
	}
	target = filepath.Clean(target)
	if within(target, b.in.DataDir) || within(b.in.DataDir, target) {
		return priorSpace{}
	}
	r, err := os.OpenRoot(target)
	if err != nil {
		return priorSpace{}
	}
	id, err := r.Stat(".")
	if err != nil {
		r.Close()
		return priorSpace{}
	}
	return priorSpace{location: target, id: id, root: r}
}

// maxTablespaces bounds the pg_tblspc entries a resync looks at: the
// directory belongs to the postgres user.
const maxTablespaces = 4096

// resyncSpaces opens, by OID, the location of every tablespace link of a
// resynced standby (openPriorSpace's rule), for PriorFiles to list their
// relation files; close closes them.
func (b *attempt) resyncSpaces(root *os.Root) (spaces map[string]*os.Root, close func()) {
	spaces = map[string]*os.Root{}
	close = func() {
		for _, r := range spaces {
			r.Close()
		}
	}
	d, err := root.Open("pg_tblspc")
	if err != nil {
		return spaces, close
	}
	defer d.Close()
	names, err := d.Readdirnames(maxTablespaces)
	if err != nil && len(names) == 0 {
		return spaces, close
	}
	for _, oid := range names {
		// PriorFiles' own rule: anything else in pg_tblspc is not a
		// tablespace, and PriorFiles would refuse it.
		if !incremental.IsOID(oid) {
			continue
		}
		if sp := b.openPriorSpace(root, "pg_tblspc/"+oid); sp.root != nil {
			spaces[oid] = sp.root
		}
	}
	return spaces, close
}

// checkSpacesListed holds the planned tablespaces to where the listed files
// were found before the upload. The uploaded manifest cannot be taken back
// once BASE_BACKUP started: the primary will send those files as changed
// blocks, to be applied to the prior file at its planned location. If that
// is another directory (the mapping changed, or the directory was replaced),
// the attempt fails here, before it writes anything, having forgotten the
// tablespace's entries, so that the next one takes them whole
// (docs/incremental.md, "Tablespaces"). A tablespace no longer on the
// primary is sent not at all: nothing of it is reconstructed.
func (b *attempt) checkSpacesListed(root *os.Root, inc *incPlan, spaces []*space) error {
	if inc == nil {
		return nil
	}
	var moved []error
	var forget []resume.Record
	for _, sp := range spaces {
		prior, ok := inc.spaces[sp.link]
		if !ok {
			continue
		}
		fi, err := os.Stat(sp.local)
		if sp.local == prior.location && err == nil && os.SameFile(fi, prior.id) {
			continue
		}
		moved = append(moved, fmt.Errorf("tablespace %d: the files an earlier attempt copied are in %s, but this attempt puts the tablespace in %s "+
			"(the tablespace mapping changed, or the directory was replaced): the changed blocks the primary sends cannot be applied there; "+
			"the next attempt copies this tablespace's files whole", sp.oid, prior.location, sp.local))
		for p := range inc.listed {
			if strings.HasPrefix(p, sp.link+"/") {
				forget = append(forget, resume.Record{Kind: resume.Forget, Path: p})
			}
		}
	}
	if len(moved) == 0 {
		return nil
	}
	jr, _, err := openJournal(root, false)
	if err != nil {
		return errors.Join(append(moved, err)...)
	}
	defer jr.close()
	if err := jr.append(forget...); err != nil {
		return errors.Join(append(moved, err)...)
	}
	return errors.Join(moved...)
}
