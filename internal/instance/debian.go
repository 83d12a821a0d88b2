package instance

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/pg-standby/pg-standby/internal/pgconf"
)

// writeDebianConfig writes the files pg_createcluster would, so pg_lsclusters
// shows the instance and Debian's postgresql@VERSION-NAME.service runs it.
// postgresql.conf is 0644 there, so a primary_conninfo holding a password
// goes to conf.d/PrimaryFile (0600, postgres only) instead; it returns the
// file that holds primary_conninfo.
func writeDebianConfig(in *Instance, spec Spec, own owner) (string, error) {
	d := in.Debian
	top, err := openDir(filepath.Dir(filepath.Dir(d.ConfDir)), true)
	if err != nil {
		return "", refuseConfLink(d.ConfDir, err)
	}
	defer top.Close()
	ver, err := top.sub(filepath.Base(filepath.Dir(d.ConfDir)), true, 0o755, own)
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
	conf := fmt.Sprintf(`# Minimal pg-standby instance %[1]s-%[2]s, made by pg-standby init.
# Everything else comes from the primary; postgres starts once the backup is done.
data_directory = %[3]s
hba_file = %[4]s
ident_file = %[5]s
external_pid_file = %[6]s
port = %[7]d
unix_socket_directories = '/var/run/postgresql'
cluster_name = %[8]s
include_dir = 'conf.d'
`, d.Version, d.Name, pgconf.Quote(in.DataDir), pgconf.Quote(filepath.Join(d.ConfDir, "pg_hba.conf")),
		pgconf.Quote(filepath.Join(d.ConfDir, "pg_ident.conf")),
		pgconf.Quote("/var/run/postgresql/"+d.Version+"-"+d.Name+".pid"), spec.Port, pgconf.Quote(d.Version+"/"+d.Name))
	connFile := in.ConfFile
	if HasPassword(spec.PrimaryConninfo) {
		connFile = filepath.Join(d.ConfDir, "conf.d", PrimaryFile)
		secret := "# Written by pg-standby init: mode 0600, as the connection holds a password.\n" + spec.conninfoSetting()
		if err := confd.writeFile(PrimaryFile, secret, 0o600, own); err != nil {
			return "", err
		}
		conf += "\n# primary_conninfo is in conf.d/" + PrimaryFile + " (mode 0600): it holds a password.\n" + spec.optionSettings()
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
		{"start.conf", "# Automatic startup configuration: auto, manual or disabled (see pg_createcluster(1)).\nauto\n", 0o644},
		{"pg_ctl.conf", "# Automatic pg_ctl configuration\npg_ctl_options = ''\n", 0o644},
		{"environment", "# environment variables for postgres processes\n", 0o644},
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
