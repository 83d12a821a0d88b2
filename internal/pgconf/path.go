package pgconf

import (
	"fmt"
	"os"
	"path"
	"strings"
)

// canonicalPath is src/port/path.c's canonicalize_path on Unix: repeated and
// trailing slashes and "." components go, and ".." removes the component
// before it lexically (without looking at symlinks), as in path.Clean. The
// empty path stays empty. PostgreSQL 15.18 behaves this way: an include of
// "../x.conf" from a symlinked directory opens the file next to the symlink,
// not next to its target.
func canonicalPath(p string) string {
	if p == "" {
		return ""
	}
	return path.Clean(p)
}

// configLocation is guc-file.l's AbsoluteConfigLocation. An absolute location
// is used exactly as written (PostgreSQL does not canonicalize it); a
// relative one is taken from the directory of the file that names it.
func configLocation(location, callingFile string) string {
	if strings.HasPrefix(location, "/") {
		return location
	}
	return canonicalPath(path.Dir(callingFile) + "/" + location)
}

// makeAbsolute is path.c's make_absolute_path: a relative path is taken from
// the current directory, and the result is canonicalized.
func makeAbsolute(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		wd, err := os.Getwd()
		if err != nil {
			return "", fmt.Errorf("make %q absolute: %w", p, err)
		}
		p = wd + "/" + p
	}
	return canonicalPath(p), nil
}

// isBlankName reports a file or directory name that is empty or all
// " \t\r\n"; PostgreSQL rejects those rather than read the including
// directory.
func isBlankName(s string) bool { return strings.Trim(s, " \t\r\n") == "" }
