package instance

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/pg-standby/pg-standby/internal/pgconf"
)

// writeDebianConfig writes the files pg_createcluster would, so pg_lsclusters
// shows the instance and Debian's postgresql@VERSION-NAME.service runs it.
// postgresql.conf is 0644 there, so a primary_conninfo holding a password
// goes to conf.d/PrimaryFile (0600, postgres only) instead; it returns the
// file that holds primary_conninfo.
func writeDebianConfig(in *Instance, spec Spec, own owner) (string, error) {
	d := in.Debian
	root := filepath.Dir(filepath.Dir(d.ConfDir))
	top, err := openDir(filepath.Dir(root), true)
	if err != nil {
		return "", refuseConfLink(d.ConfDir, err)
	}
	defer top.Close()
	// As pg_createcluster: a missing /etc/postgresql is the creator's, a
	// missing /etc/postgresql/VERSION postgres', both 0755 whatever the umask.
	cr, err := top.ensure(filepath.Base(root), 0o755, creator())
	if err != nil {
		return "", refuseConfLink(d.ConfDir, err)
	}
	defer cr.Close()
	ver, err := cr.ensure(filepath.Base(filepath.Dir(d.ConfDir)), 0o755, own)
	if err != nil {
		return "", refuseConfLink(d.ConfDir, err)
	}
	defer ver.Close()
	dir, err := ver.sub(filepath.Base(d.ConfDir), true, 0o755, own)
	if err != nil {
		return "", refuseConfLink(d.ConfDir, err)
	}
	defer dir.Close()
	confd, err := dir.sub("conf.d", true, 0o755, own)
	if err != nil {
		return "", refuseConfLink(d.ConfDir, err)
	}
	defer confd.Close()
	conf := debianConf(in, spec)
	connFile := in.ConfFile
	if HasPassword(spec.PrimaryConninfo) {
		connFile = filepath.Join(d.ConfDir, "conf.d", PrimaryFile)
		secret := "# Written by pg-standby init: mode 0600, as the connection holds a password.\n" + spec.conninfoSetting()
		if err := confd.writeFile(PrimaryFile, secret, 0o600, own); err != nil {
			return "", err
		}
		conf += secretNote + "\n" + spec.optionSettings()
	} else {
		// Written after include_dir, this one wins; an old secret file goes.
		if err := confd.remove(PrimaryFile); err != nil {
			return "", err
		}
		conf += spec.Settings()
	}
	files := []struct {
		name, content string
		mode          os.FileMode
	}{
		{"postgresql.conf", conf, 0o644},
		{"pg_hba.conf", DefaultHBA, 0o640},
		{"pg_ident.conf", DefaultIdent, 0o640},
		{"start.conf", startConf, 0o644},
		{"pg_ctl.conf", pgCtlConf, 0o644},
		{"environment", environmentConf, 0o644},
	}
	for _, f := range files {
		if f.name != "postgresql.conf" {
			if _, ok, err := dir.lstat(f.name); err != nil {
				return "", err
			} else if ok {
				continue // an admin's edits win on a re-run
			}
		}
		if err := dir.writeFile(f.name, f.content, f.mode, own); err != nil {
			return "", err
		}
	}
	return connFile, nil
}

// The texts pg_createcluster writes for these files (postgresql-common's
// set_cluster_start_conf, set_cluster_pg_ctl_conf, default environment).
const (
	startConf = `# Automatic startup configuration
#   auto: automatically start the cluster
#   manual: manual startup with pg_ctlcluster/postgresql@.service only
#   disabled: refuse to start cluster
# See pg_createcluster(1) for details. When running from systemd,
# invoke 'systemctl daemon-reload' after editing this file.

auto
`
	pgCtlConf = `# Automatic pg_ctl configuration
# This configuration file contains cluster specific options to be passed to
# pg_ctl(1).

pg_ctl_options = ''
`
	environmentConf = `# environment variables for postgres processes
# This file has the same syntax as postgresql.conf:
#  VARIABLE = simple_value
#  VARIABLE2 = 'any value!'
# I. e. you need to enclose any value which does not only consist of letters,
# numbers, and '-', '_', '.' in single quotes. Shell commands are not
# evaluated.
`
)

// DefaultIdent is an empty user name map.
const DefaultIdent = "# PostgreSQL User Name Maps\n# MAPNAME       SYSTEM-USERNAME         PG-USERNAME\n"

// DefaultHBA is pg_createcluster's default for a new cluster.
const DefaultHBA = `# TYPE  DATABASE        USER            ADDRESS                 METHOD
local   all             postgres                                peer
local   all             all                                     peer
host    all             all             127.0.0.1/32            scram-sha-256
host    all             all             ::1/128                 scram-sha-256
local   replication     all                                     peer
host    replication     all             127.0.0.1/32            scram-sha-256
host    replication     all             ::1/128                 scram-sha-256
`

// NextPort is the port pg_createcluster would pick for a new Debian
// cluster: one past the highest port of the existing clusters, 5432 for the
// first; a re-run keeps the instance's own.
func NextPort(in *Instance) int {
	if cfg, err := pgconf.Load(in.ConfFile, "/nonexistent"); err == nil {
		if s, ok := cfg.Get("port"); ok {
			if n, err := strconv.Atoi(s.Value); err == nil {
				return n
			}
		}
	}
	port := 5431
	confs, _ := filepath.Glob(filepath.Join(ConfRoot(), "*", "*", "postgresql.conf"))
	for _, c := range confs {
		if c == in.ConfFile {
			continue
		}
		cfg, err := pgconf.Load(c, "/nonexistent")
		if err != nil {
			continue
		}
		p := 5432
		if s, ok := cfg.Get("port"); ok {
			if n, err := strconv.Atoi(s.Value); err == nil {
				p = n
			}
		}
		port = max(port, p)
	}
	return port + 1
}

// refuseConfLink words a LinkError as a refusal of the configuration directory.
func refuseConfLink(dir string, err error) error {
	var le *LinkError
	if errors.As(err, &le) {
		return &RefusedError{What: "configuration directory", Dir: dir, Reason: le.Error()}
	}
	return err
}

// debianSample is where postgresql-common's packages put a version's
// template, the file pg_createcluster (through initdb) starts from.
var debianSample = "/usr/share/postgresql/%s/postgresql.conf.sample"

// maxSample bounds the read of the template (about 30 KiB in PostgreSQL 15).
const maxSample = 1 << 20

// debianConf is the postgresql.conf pg_createcluster writes for the cluster,
// with pg-standby's settings appended: the version's sample, with initdb's
// sizing values and pg_createcluster's settings set as its set_conf_value
// does (the commented line replaced in place, else appended). Without the
// sample it is a minimal file that says so.
func debianConf(in *Instance, spec Spec) string {
	d := in.Debian
	set := [][2]string{
		// initdb's active sizing lines (its probe's result on any usual host).
		{"max_connections", "100"}, {"shared_buffers", "128MB"}, {"dynamic_shared_memory_type", "posix"},
		{"max_wal_size", "1GB"}, {"min_wal_size", "80MB"},
		{"data_directory", pgconf.Quote(in.DataDir)},
		{"hba_file", pgconf.Quote(filepath.Join(d.ConfDir, "pg_hba.conf"))},
		{"ident_file", pgconf.Quote(filepath.Join(d.ConfDir, "pg_ident.conf"))},
		{"unix_socket_directories", "'/var/run/postgresql'"},
		{"port", strconv.Itoa(spec.Port)},
	}
	if tz := hostZone(); tz != "" {
		set = append(set, [2]string{"log_timezone", pgconf.Quote(tz)})
	}
	if snakeoil() {
		set = append(set, [2]string{"ssl_cert_file", pgconf.Quote(snakeoilCert)},
			[2]string{"ssl_key_file", pgconf.Quote(snakeoilKey)}, [2]string{"ssl", "on"})
	}
	set = append(set, [2]string{"external_pid_file", pgconf.Quote("/var/run/postgresql/" + d.Version + "-" + d.Name + ".pid")},
		[2]string{"cluster_name", pgconf.Quote(d.Version + "/" + d.Name)},
		[2]string{"log_line_prefix", "'%m [%p] %q%u@%d '"}, [2]string{"include_dir", "'conf.d'"})
	sample, err := readBounded(fmt.Sprintf(debianSample, d.Version), maxSample)
	var lines []string
	if err != nil {
		lines = []string{fmt.Sprintf("# Minimal pg-standby instance %s-%s, made by pg-standby init: PostgreSQL %s's", d.Version, d.Name, d.Version),
			fmt.Sprintf("# template (%s) was not readable: %v.", fmt.Sprintf(debianSample, d.Version), err),
			"# Everything else comes from the primary; postgres starts once the backup is done."}
	} else {
		lines = strings.Split(strings.TrimSuffix(sample, "\n"), "\n")
	}
	for _, kv := range set {
		lines = setConfLine(lines, kv[0], kv[1])
	}
	// initdb's comment-only edit: the sample's "0" is Linux's default here.
	for i, l := range lines {
		l = strings.Replace(l, "#bgwriter_flush_after = 0\t", "#bgwriter_flush_after = 512kB\t", 1)
		lines[i] = strings.Replace(l, "#checkpoint_flush_after = 0\t", "#checkpoint_flush_after = 256kB\t", 1)
	}
	return strings.Join(lines, "\n") + "\n" + queryResultNote
}

// queryResultNote says why init leaves initdb's locale and time settings
// commented out: pg-standby makes the worker copy the primary's values unless
// the admin sets them here, so an active line would override the primary's.
const queryResultNote = `
# pg-standby init: unlike pg_createcluster, the settings that change what
# queries return (timezone, datestyle, lc_*, default_text_search_config,
# extra_float_digits) are left commented out above: the standby follows the
# primary's values unless you set them in this file.
`

// setConfLine sets name as pg_createcluster's set_conffile_value does: an
// active line's value is replaced, else the first commented-out one becomes
// active (its trailing comment kept), else the setting is appended.
func setConfLine(lines []string, name, value string) []string {
	val := `(\s*(?:=|\s)\s*)(?:\w+\b|'[^']*')((?:\s*#.*)?)`
	active := regexp.MustCompile(`(?i)^\s*(` + regexp.QuoteMeta(name) + `)` + val)
	commented := regexp.MustCompile(`(?i)^\s*#\s*(` + regexp.QuoteMeta(name) + `)` + val + `$`)
	for _, re := range []*regexp.Regexp{active, commented} {
		for i, l := range lines {
			if m := re.FindStringSubmatch(l); m != nil {
				lines[i] = m[1] + m[2] + value + m[3]
				return lines
			}
		}
	}
	return append(lines, name+" = "+value)
}

// The snakeoil pair of Debian's ssl-cert package, which pg_createcluster
// configures when the key is readable by postgres (the ssl-cert group).
const (
	snakeoilCert = "/etc/ssl/certs/ssl-cert-snakeoil.pem"
	snakeoilKey  = "/etc/ssl/private/ssl-cert-snakeoil.key"
)

// snakeoil reports whether pg_createcluster would turn ssl on: the
// certificate exists and postgres may read the key.
func snakeoil() bool {
	if _, err := os.Stat(snakeoilCert); err != nil {
		return false
	}
	var st unix.Stat_t
	if unix.Stat(snakeoilKey, &st) != nil {
		return false
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return false
	}
	if strconv.Itoa(int(st.Uid)) == u.Uid {
		return st.Mode&0o400 != 0
	}
	if gids, err := u.GroupIds(); err == nil && slices.Contains(gids, strconv.Itoa(int(st.Gid))) {
		return st.Mode&0o040 != 0
	}
	return st.Mode&0o004 != 0
}

// readBounded reads at most limit bytes of a root-owned package file.
func readBounded(path string, limit int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return "", err
	}
	if int64(len(b)) > limit {
		return "", fmt.Errorf("larger than %d bytes", limit)
	}
	return string(b), nil
}

// creator is who owns what init makes outside the instance: root, or the
// user running it.
func creator() owner { return owner{os.Geteuid(), os.Getegid()} }

// ensure opens the directory name in d; only when it is missing does it make
// it, with mode and owner set on the descriptor (as install -d -o -m does).
// An existing one is left as it is.
func (d *safeDir) ensure(name string, mode os.FileMode, o owner) (*safeDir, error) {
	made := unix.Mkdirat(d.fd, name, 0o700)
	if made != nil && !errors.Is(made, unix.EEXIST) {
		return nil, fmt.Errorf("create %s/%s: %w", d.path, name, made)
	}
	fd, err := openat2Dir(d.fd, name)
	p := d.path + "/" + name
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		return nil, &LinkError{Path: p}
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	s := &safeDir{fd: fd, path: p}
	if made == nil {
		if err := s.own(mode, o); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// hostZone is the zone initdb finds for log_timezone when TZ is unset: the
// name /etc/localtime links to under zoneinfo; "" (left commented) otherwise.
func hostZone() string {
	if os.Getenv("TZ") != "" {
		return "" // initdb would validate TZ against its zone database
	}
	l, err := os.Readlink("/etc/localtime")
	if err != nil {
		return ""
	}
	if _, zone, ok := strings.Cut(l, "/zoneinfo/"); ok && zone != "" {
		return zone
	}
	return ""
}
