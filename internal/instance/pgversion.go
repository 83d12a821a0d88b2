package instance

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"syscall"
)

// pgVersion is what PG_VERSION may hold: a major version ("15", "9.6").
var pgVersion = regexp.MustCompile(`^[0-9]{1,3}(\.[0-9]{1,3})?$`)

// PGVersion reads the data directory's PG_VERSION, a file the postgres user
// and the copied backup control: it must be a version number, never a path
// (pg-standby postgres builds /usr/lib/postgresql/VERSION/bin/postgres from it).
func (in *Instance) PGVersion() (string, error) {
	path := in.DataDir + "/PG_VERSION"
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	} else if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 64))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	v := strings.TrimSpace(string(b))
	if !pgVersion.MatchString(v) {
		return "", fmt.Errorf("%s holds %q, not a PostgreSQL version number", path, v)
	}
	return v, nil
}
