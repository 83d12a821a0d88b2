package instance

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/pg-standby/pg-standby/internal/pgconf"
)

// debianName is a postgresql-common cluster name, VERSION-NAME ("15-main"),
// split at the first dash as Debian's postgresql@.service does.
var debianName = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)-([^/]+)$`)

// ConfRoot is postgresql-common's configuration root, /etc/postgresql unless
// PG_CLUSTER_CONF_ROOT says otherwise (as pg_lsclusters honours it).
func ConfRoot() string {
	if r := os.Getenv("PG_CLUSTER_CONF_ROOT"); r != "" {
		return r
	}
	return "/etc/postgresql"
}

// Debian is set for a postgresql-common cluster.
type Debian struct {
	Version, Name string
	ConfDir       string // /etc/postgresql/VERSION/NAME
}

// Resolve finds the instance a unit's %i (or a user's argument) names, by one rule:
//   - "VERSION-NAME" whose configuration directory exists (or, with forInit,
//     any such name): a Debian cluster; configuration in
//     /etc/postgresql/VERSION/NAME, data directory from its data_directory
//     (default /var/lib/postgresql/VERSION/NAME);
//   - an absolute path, or a systemd-escaped one (systemd-escape --path):
//     the data directory itself, with its postgresql.conf inside.
func Resolve(name string, forInit bool) (*Instance, error) {
	if name == "" {
		return nil, errors.New("no instance given: name a Debian cluster (15-main), a data directory, or use --pgdata")
	}
	if m := debianName.FindStringSubmatch(name); m != nil {
		confDir := filepath.Join(ConfRoot(), m[1], m[2])
		if _, err := os.Stat(confDir); err == nil || forInit {
			return resolveDebian(name, m[1], m[2], confDir, forInit)
		}
	}
	path := name
	if !strings.HasPrefix(name, "/") {
		path = unit.UnitNamePathUnescape(name)
	}
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("instance %q is neither a Debian cluster (no %s) nor an absolute or systemd-escaped data directory path",
			name, filepath.Join(ConfRoot(), "VERSION", "NAME"))
	}
	in, err := New(path, "")
	if err != nil {
		return nil, err
	}
	in.Name = name
	return in, nil
}

func resolveDebian(name, version, cluster, confDir string, forInit bool) (*Instance, error) {
	conf := filepath.Join(confDir, "postgresql.conf")
	dataDir := filepath.Join("/var/lib/postgresql", version, cluster)
	if c, err := pgconf.Load(conf, ""); err == nil {
		if dd := c.DataDir(); dd != confDir {
			dataDir = dd
		}
	} else if !forInit {
		return nil, fmt.Errorf("cluster %s: %w", name, err)
	}
	// For init, a configuration that cannot be read (missing, or broken by
	// whoever owns it) names no data directory: init's default holds, and
	// init rewrites the file.
	in, err := New(dataDir, conf)
	if err != nil {
		return nil, err
	}
	in.Name = name
	in.Debian = &Debian{Version: version, Name: cluster, ConfDir: confDir}
	return in, nil
}

// ResolveInit resolves init's INSTANCE. A Debian cluster's data directory is
// /var/lib/postgresql/VERSION/NAME, or dataDir when given (the admin's word
// on the command line); an existing postgresql.conf naming another one is
// refused, since the postgres user can edit that file and init, as root,
// would create and chown whatever it names.
func ResolveInit(name, dataDir string) (*Instance, error) {
	in, err := Resolve(name, true)
	if err != nil {
		return nil, err
	}
	if in.Debian == nil {
		if dataDir != "" {
			return nil, errors.New("give INSTANCE or --pgdata, not both (--pgdata goes with a Debian cluster name only)")
		}
		return in, nil
	}
	def := filepath.Join("/var/lib/postgresql", in.Debian.Version, in.Debian.Name)
	switch {
	case dataDir != "":
		if in.DataDir, err = filepath.Abs(dataDir); err != nil {
			return nil, err
		}
	case in.DataDir != def:
		return nil, &RefusedError{Dir: in.DataDir, Reason: fmt.Sprintf("%s sets data_directory to it, not to %s where pg-standby init puts a cluster's data; "+
			"the postgres user may edit that file, so init, run as root, does not take a directory from it", in.ConfFile, def),
			Hint: "if it is right, confirm it on the command line: pg-standby init " + name + " --pgdata " + in.DataDir + " ..."}
	}
	return in, nil
}
