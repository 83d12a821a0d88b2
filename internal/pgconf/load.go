package pgconf

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"
)

// maxDepth is guc-file.l's nesting limit: the main file is depth 0 and a file
// deeper than 10 is an error, which is also what stops include loops.
const maxDepth = 10

// autoConfName is PG_AUTOCONF_FILENAME, written by ALTER SYSTEM.
const autoConfName = "postgresql.auto.conf"

// Load parses confFile (absolute path) with its includes, then
// dataDir/postgresql.auto.conf as described.
//
// As at server start, the data directory is dataDir if non-empty, else the
// data_directory set by confFile (and its includes), else the directory of
// confFile; postgresql.auto.conf there may be missing. A relative confFile or
// dataDir is taken from the current directory.
func Load(confFile, dataDir string) (*Config, error) {
	return load(confFile, dataDir, nil)
}

// LoadOnly is Load reading only the files for which allow(absolute path)
// is true; any other named file is skipped as if it did not exist.
func LoadOnly(confFile, dataDir string, allow func(string) bool) (*Config, error) {
	return load(confFile, dataDir, allow)
}

func load(confFile, dataDir string, allow func(string) bool) (*Config, error) {
	if isBlankName(confFile) {
		return nil, fmt.Errorf("empty configuration file name %q", confFile)
	}
	conf, err := makeAbsolute(confFile)
	if err != nil {
		return nil, err
	}
	l := &loader{cfg: &Config{settings: make(map[string]Setting)}, main: true, allow: allow}
	if err := l.file(conf, true, "", 0, 0); err != nil {
		return nil, err
	}
	if l.cfg.dataDir, err = l.resolveDataDir(conf, dataDir); err != nil {
		return nil, err
	}
	l.main = false
	if err := l.file(canonicalPath(l.cfg.dataDir+"/"+autoConfName), false, "", 0, 0); err != nil {
		return nil, err
	}
	return l.cfg, nil
}

// Bounds of one Load. Root's guard and the worker read these files, which
// the postgres user (and, for postgresql.auto.conf, the primary) controls:
// PostgreSQL reads any size, but a real configuration is a few kB.
const (
	MaxFileSize  = 1 << 20 // one file
	MaxTreeSize  = 8 << 20 // all files of one Load
	MaxTreeFiles = 1000    // files read (and directory entries considered)
)

// loader carries the state of one Load.
type loader struct {
	// size and count are what this Load has read so far.
	size, count int64
	cfg         *Config
	// main is true while reading the main file and its includes, the only
	// files that can set the data directory (postgresql.auto.conf is read
	// after the data directory is fixed).
	main bool
	// dataDirSetting is the last data_directory of the main files, if any.
	dataDirSetting *Setting
	// allow, if set, says which files may be read (LoadOnly).
	allow func(string) bool
}

// resolveDataDir picks the data directory as documented on Load.
func (l *loader) resolveDataDir(conf, arg string) (string, error) {
	switch s := l.dataDirSetting; {
	case arg != "":
		return makeAbsolute(arg)
	case s != nil:
		// The server takes a relative data_directory from its own working
		// directory, which we cannot know.
		if !strings.HasPrefix(s.Value, "/") {
			return "", fmt.Errorf("data_directory %q in %q line %d is not an absolute path; pass the data directory explicitly",
				s.Value, s.File, s.Line)
		}
		return canonicalPath(s.Value), nil
	default:
		return path.Dir(conf), nil
	}
}

// file reads one configuration file like guc-file.l's ParseConfigFile.
// location is as written in the include directive (or an absolute path at
// the top level). A strict file must exist; otherwise a missing one is
// recorded in Skipped.
//
// PostgreSQL's include_if_exists skips a file it cannot open for any reason;
// we skip only files that do not exist, because a file we are not allowed to
// read may well be readable by the server.
func (l *loader) file(location string, strict bool, callingFile string, callingLine, depth int) error {
	from := includedFrom(callingFile, callingLine)
	if isBlankName(location) {
		return fmt.Errorf("empty configuration file name %q%s", location, from)
	}
	if depth > maxDepth {
		return fmt.Errorf("could not open configuration file %q%s: maximum nesting depth exceeded", location, from)
	}
	abs := configLocation(location, callingFile)
	// Like PostgreSQL we catch only a file including itself directly; longer
	// loops end at the depth limit.
	if callingFile != "" && abs == callingFile {
		return fmt.Errorf("configuration file recursion in %q line %d", callingFile, callingLine)
	}
	if l.allow != nil && !l.allow(abs) {
		l.cfg.skipped = append(l.cfg.skipped, abs)
		return nil
	}
	data, err := l.read(abs)
	if err != nil {
		if !strict && isMissing(err) {
			l.cfg.skipped = append(l.cfg.skipped, abs)
			return nil
		}
		return fmt.Errorf("read configuration file %q%s: %w", abs, from, err)
	}
	l.cfg.files = append(l.cfg.files, abs)
	return parse(abs, data, func(st statement) error { return l.statement(st, depth) })
}

// statement applies one parsed line: include directives are followed at once,
// in place, and anything else replaces an earlier setting of the same name.
func (l *loader) statement(st statement, depth int) error {
	switch st.Name {
	case "include_dir":
		return l.dir(st.Value, st.File, st.Line, depth+1)
	case "include_if_exists":
		return l.file(st.Value, false, st.File, st.Line, depth+1)
	case "include":
		return l.file(st.Value, true, st.File, st.Line, depth+1)
	}
	l.cfg.settings[st.Name] = st.Setting
	// PostgreSQL 15 finds the data directory by comparing names with
	// strcmp, so only "data_directory" spelled in lower case moves it.
	if l.main && st.rawName == "data_directory" {
		s := st.Setting
		l.dataDirSetting = &s
	}
	return nil
}

// dir reads an include_dir like guc-file.l's ParseConfigDirectory: the files
// whose names end in ".conf", are at least 6 bytes long and do not start with
// "." (hidden files, editor debris), in byte order of their names, each at
// the given depth. Entries are stat'ed through symlinks; directories are
// skipped, and an entry that cannot be stat'ed (a dangling symlink) is an
// error.
func (l *loader) dir(location, callingFile string, callingLine, depth int) error {
	from := includedFrom(callingFile, callingLine)
	if isBlankName(location) {
		return fmt.Errorf("empty configuration directory name %q%s", location, from)
	}
	dir := configLocation(location, callingFile)
	entries, err := readDir(dir)
	if err != nil {
		return fmt.Errorf("read configuration directory %q%s: %w", dir, from, err)
	}
	var files []string
	if l.count += int64(len(entries)); l.count > MaxTreeFiles {
		return fmt.Errorf("read configuration directory %q%s: more than %d files in the configuration", dir, from, MaxTreeFiles)
	}
	for _, e := range entries {
		name := e.Name()
		if len(name) < 6 || name[0] == '.' || !strings.HasSuffix(name, ".conf") {
			continue
		}
		p := canonicalPath(dir + "/" + name)
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("stat configuration file %q%s: %w", p, from, err)
		}
		if !fi.IsDir() {
			files = append(files, p)
		}
	}
	sort.Strings(files)
	for _, p := range files {
		if err := l.file(p, true, callingFile, callingLine, depth); err != nil {
			return err
		}
	}
	return nil
}

// includedFrom words where an include came from, or nothing at the top level.
func includedFrom(callingFile string, callingLine int) string {
	if callingFile == "" {
		return ""
	}
	return fmt.Sprintf(" (included from %q line %d)", callingFile, callingLine)
}

// isMissing reports an open error meaning the file does not exist, for any
// user: no such file, or a path component that is not a directory.
func isMissing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// read reads one configuration file, bounded: it must be a regular file
// (stat'ed before it is opened, so a device or FIFO is never opened; opened
// O_NONBLOCK and fstat'ed again, so one swapped in meanwhile cannot block),
// of at most MaxFileSize bytes, within the Load's MaxTreeSize and
// MaxTreeFiles. Symlinks are followed, as PostgreSQL follows them.
func (l *loader) read(abs string) ([]byte, error) {
	if l.count++; l.count > MaxTreeFiles {
		return nil, fmt.Errorf("more than %d files in the configuration", MaxTreeFiles)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	if err := regular(fi); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(abs, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := regular(fi); err != nil {
		return nil, err
	}
	limit := min(int64(MaxFileSize), MaxTreeSize-l.size)
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		if limit < MaxFileSize {
			return nil, fmt.Errorf("the configuration's files hold more than %d bytes in all", MaxTreeSize)
		}
		return nil, fmt.Errorf("larger than %d bytes (no configuration file is that large)", MaxFileSize)
	}
	l.size += int64(len(data))
	return data, nil
}

// regular refuses anything but a regular file, with what it is.
func regular(fi fs.FileInfo) error {
	if fi.Mode().IsRegular() {
		return nil
	}
	kind := "not a regular file"
	switch m := fi.Mode(); {
	case m&fs.ModeNamedPipe != 0:
		kind = "a FIFO, not a regular file"
	case m&fs.ModeCharDevice != 0:
		kind = "a character device, not a regular file"
	case m&fs.ModeDevice != 0:
		kind = "a block device, not a regular file"
	case m&fs.ModeSocket != 0:
		kind = "a socket, not a regular file"
	case m.IsDir():
		kind = "a directory, not a regular file"
	}
	return errors.New(kind)
}

// readDir lists a directory without ever opening anything else: a FIFO
// named as include_dir would block an open(2).
func readDir(dir string) ([]fs.DirEntry, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, syscall.ENOTDIR
	}
	f, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := f.ReadDir(MaxTreeFiles + 1)
	if err != nil && err != io.EOF {
		return nil, err
	}
	return entries, nil
}
