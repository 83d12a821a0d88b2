package instance

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/pg-standby/pg-standby/internal/pgconf"
)

// Change is one setting an Update of a minimal instance set.
type Change struct {
	Name, Value, Old, File string
	WasSet, Same           bool
	// Secret: the value is a connection string and is never shown.
	Secret bool
}

func (c Change) String() string {
	switch {
	case c.Secret && c.Same:
		return fmt.Sprintf("%s in %s is already the one given (not shown: it may hold a password)", c.Name, c.File)
	case c.Secret:
		return fmt.Sprintf("set %s in %s (not shown: it may hold a password)", c.Name, c.File)
	case c.Same:
		return fmt.Sprintf("%s = %s in %s already", c.Name, c.Value, c.File)
	case c.WasSet:
		return fmt.Sprintf("set %s = %s in %s (was %s)", c.Name, c.Value, c.File, c.Old)
	}
	return fmt.Sprintf("set %s = %s in %s (was not set)", c.Name, c.Value, c.File)
}

// setting is the postgresql.conf line init writes for option opt (a flag
// name): the setting's name, its quoted value and the value as read back.
func (s Spec) setting(opt string) (name, value, raw string, ok bool) {
	q := func(n, v string) (string, string, string, bool) { return n, pgconf.Quote(v), v, true }
	switch opt {
	case "primary-conninfo", "primary-conninfo-file":
		return q("primary_conninfo", s.PrimaryConninfo)
	case "slot":
		return q("primary_slot_name", s.SlotName)
	case "checkpoint":
		return q("pg_standby.checkpoint", s.Checkpoint)
	case "compress":
		return q("pg_standby.compression", s.Compression)
	case "metrics-dir":
		return q("pg_standby.metrics_dir", s.MetricsDir)
	case "tablespace-mapping":
		return q("pg_standby.tablespace_mapping", FormatMapping(s.TablespaceMapping))
	case "create-slot":
		v := map[bool]string{true: "on", false: "off"}[s.CreateSlot]
		return "pg_standby.create_slot", v, v, true
	case "direct-io":
		return "pg_standby.direct_io", s.DirectIO, s.DirectIO, true
	case "max-rate":
		v := strconv.FormatInt(s.MaxRateKB, 10)
		return "pg_standby.max_rate", v, v, true
	case "port":
		v := strconv.Itoa(s.Port)
		return "port", v, v, true
	}
	return "", "", "", false
}

// Existing reports whether in is a minimal instance init made before: its
// data directory holds basebackup.signal and nothing copied (checkMinimal),
// and its configuration file is a regular file. A directory holding more is refused.
func Existing(in *Instance) (bool, error) {
	d, err := probeDir(in.DataDir)
	if err != nil || d == nil {
		return false, err
	}
	defer d.Close()
	if err := checkMinimal(in, d); err != nil {
		return false, err
	}
	if _, ok, err := d.lstat(BackupSignal); err != nil || !ok {
		return false, err
	}
	cd, err := probeDir(filepath.Dir(in.ConfFile))
	if err != nil || cd == nil {
		return false, err
	}
	defer cd.Close()
	st, ok, err := cd.lstat(filepath.Base(in.ConfFile))
	// A link or FIFO planted there is no configuration to update: Create
	// replaces it.
	return ok && st.Mode&unix.S_IFMT == unix.S_IFREG, err
}

// LoadConfig loads the instance's configuration as root may: skipping any
// file whose path holds a link the postgres user may have planted.
func LoadConfig(in *Instance) (*pgconf.Config, error) {
	noLink := func(p string) bool { r, err := filepath.EvalSymlinks(p); return err == nil && r == p }
	return pgconf.LoadOnly(in.ConfFile, in.DataDir, noLink)
}

// Update changes only the settings of opts (init's flag names) in an
// Existing instance and keeps every other line. A setting is changed on the
// line that sets it, else appended; one set in a file init did not write is
// refused. On Debian, a primary_conninfo holding a password lives in
// conf.d/PrimaryFile (0600), as Create puts it.
func Update(in *Instance, spec Spec, opts []string) ([]Change, error) {
	own, err := fileOwner()
	if err != nil {
		return nil, err
	}
	cfg, err := LoadConfig(in)
	if err != nil {
		return nil, fmt.Errorf("read the instance's configuration: %w", err)
	}
	dir, err := openWritable(filepath.Dir(in.ConfFile))
	if err != nil {
		return nil, refuseConfLink(filepath.Dir(in.ConfFile), err)
	}
	defer dir.Close()
	main, err := readConf(dir, filepath.Base(in.ConfFile))
	if err != nil {
		return nil, err
	}
	var secret *confFile
	if in.Debian != nil {
		confd, err := dir.sub("conf.d", true, 0o755, own)
		if err != nil {
			return nil, refuseConfLink(in.Debian.ConfDir, err)
		}
		defer confd.Close()
		if secret, err = readConf(confd, PrimaryFile); err != nil {
			return nil, err
		}
	}
	var changes []Change
	for _, opt := range opts {
		name, value, raw, ok := spec.setting(opt)
		if !ok {
			continue
		}
		c, err := update(cfg, main, secret, name, value, raw)
		if err != nil {
			return nil, err
		}
		changes = append(changes, c)
	}
	for _, f := range []*confFile{secret, main} {
		if f != nil && f.dirty {
			if err := f.dir.writeFile(f.name, strings.Join(f.lines, "\n")+"\n", f.mode, own); err != nil {
				return nil, err
			}
		}
	}
	if secret != nil && secret.drop {
		return changes, secret.dir.remove(secret.name)
	}
	return changes, nil
}

// update sets name in the file that sets it now (main or secret).
func update(cfg *pgconf.Config, main, secret *confFile, name, value, raw string) (Change, error) {
	c := Change{Name: name, Value: value, File: main.path, Secret: name == "primary_conninfo"}
	win, set := cfg.Get(name)
	target, line := main, 0
	if set {
		c.WasSet, c.Old, c.Same = true, win.Value, win.Value == raw
		switch {
		case c.Same:
			// Already in effect where it is, an admin's file too: nothing to write.
			c.File = win.File
			return c, nil
		case win.File == main.path:
			line = win.Line
		case secret != nil && win.File == secret.path:
			target, line = secret, win.Line
		default:
			return c, fmt.Errorf("%s is set in %s line %d, a file pg-standby init did not write; change it there, or remove it there and re-run init",
				name, win.File, win.Line)
		}
	}
	if c.Secret && secret != nil {
		// Debian's postgresql.conf is 0644: a password goes to the 0600 file.
		if has := HasPassword(raw); has != (target == secret) {
			if line > 0 || !slices.Contains(main.lines, secretNote) {
				target.set(line, secretNote, name, "")
			}
			if has {
				target, line = secret, 0
				if !secret.exists {
					secret.lines = []string{"# Written by pg-standby init: mode 0600, as the connection holds a password."}
					secret.exists, secret.mode = true, 0o600
				}
			} else {
				secret.drop, target, line = true, main, slices.Index(main.lines, secretNote)+1
			}
		}
	}
	if c.Secret && HasPassword(raw) {
		target.mode &= 0o600
	}
	c.File = target.path
	target.set(line, name+" = "+value, name, value)
	return c, nil
}

// openWritable opens the existing directory path, walked without following
// links, for writes through it (an O_PATH descriptor cannot be fsynced);
// unlike sub it leaves its mode and owner alone.
func openWritable(path string) (*safeDir, error) {
	parent, err := openDir(filepath.Dir(path), false)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	fd, err := openat2Dir(parent.fd, filepath.Base(path))
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.EXDEV) {
		return nil, &LinkError{Path: path}
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &safeDir{fd: fd, path: path}, nil
}

// secretNote stands in postgresql.conf where primary_conninfo would be.
const secretNote = "# primary_conninfo is in conf.d/" + PrimaryFile + " (mode 0600): it holds a password."

// confFile is one configuration file init may edit, read without
// following a link and bounded; a link or non-regular file there counts as
// absent.
type confFile struct {
	dir         *safeDir
	name, path  string
	lines       []string
	mode        os.FileMode
	exists      bool
	dirty, drop bool
}

func readConf(d *safeDir, name string) (*confFile, error) {
	f := &confFile{dir: d, name: name, path: d.path + "/" + name, mode: 0o600}
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return f, nil
	}
	if errors.Is(err, unix.ELOOP) {
		return f, nil // a planted link is not read, and replaced if written
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.path, err)
	}
	file := os.NewFile(uintptr(fd), f.path)
	defer file.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("read %s: %w", f.path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return f, nil // as a link
	}
	b, err := io.ReadAll(io.LimitReader(file, pgconf.MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.path, err)
	}
	if len(b) > pgconf.MaxFileSize {
		return nil, fmt.Errorf("read %s: larger than %d bytes", f.path, pgconf.MaxFileSize)
	}
	f.exists, f.mode = true, os.FileMode(st.Mode&0o777)
	f.lines = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	return f, nil
}

// set replaces line (1-based; 0 appends) with text; a setting line keeps
// its trailing comment, as setConfLine edits it.
func (f *confFile) set(line int, text, name, value string) {
	f.dirty = true
	if line < 1 || line > len(f.lines) {
		f.lines = append(f.lines, text)
		return
	}
	if value != "" {
		if l := setConfLine([]string{f.lines[line-1]}, name, value); len(l) == 1 {
			text = l[0]
		}
	}
	f.lines[line-1] = text
}
