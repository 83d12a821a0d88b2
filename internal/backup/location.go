package backup

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// systemDirs hold the system itself: a tablespace location the primary
// names there is refused (the primary chooses it, this host owns them).
var systemDirs = []string{
	"/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/root", "/run",
	"/sbin", "/sys", "/usr", "/var/cache", "/var/lib/apt", "/var/lib/dpkg", "/var/lib/systemd",
	"/var/log", "/var/mail", "/var/spool",
}

// allowedLocation refuses a tablespace location, as the primary names it,
// that this host must not hand to the primary's files: the root directory, a
// system directory or anything below one, a path with a hidden component
// (~postgres/.ssh, ~/.config), or the worker's home directory or one above
// it. Where the location already exists through symbolic links, the
// resolved path is checked too. --tablespace-mapping targets are the
// admin's choice and are not checked here.
func allowedLocation(sp *space) error {
	if !filepath.IsAbs(sp.local) {
		return nil // checkLocation says why
	}
	paths := []string{sp.local}
	if real, ok := resolveExisting(sp.local); ok && real != sp.local {
		paths = append(paths, real)
	}
	home, _ := os.UserHomeDir()
	for _, p := range paths {
		if reason := forbiddenLocation(p, home); reason != "" {
			return &Error{Kind: Refused, Err: fmt.Errorf("tablespace %d: the primary's location %s %s: pg-standby does not write "+
				"there for the primary; map it to a directory of your choice with --tablespace-mapping=%s=/new/location "+
				"(or pg_standby.tablespace_mapping)", sp.oid, sp.local, reason, sp.primary)}
		}
	}
	return nil
}

func forbiddenLocation(p, home string) string {
	if p == "/" {
		return "is the root directory"
	}
	for _, c := range strings.Split(p, "/") {
		if strings.HasPrefix(c, ".") {
			return fmt.Sprintf("has a hidden component %q", c)
		}
	}
	for _, d := range systemDirs {
		if within(p, d) {
			return "is in the system directory " + d
		}
	}
	if home != "" && home != "/" && within(home, p) {
		return "holds the home directory " + home
	}
	return ""
}

// resolveExisting resolves the symbolic links of the longest existing
// prefix of p, and appends the rest.
func resolveExisting(p string) (string, bool) {
	rest := ""
	for dir := p; ; dir = filepath.Dir(dir) {
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			return filepath.Join(real, rest), true
		}
		if dir == "/" {
			return "", false
		}
		rest = filepath.Join(filepath.Base(dir), rest)
	}
}
