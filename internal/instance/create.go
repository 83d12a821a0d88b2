package instance

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pg-standby/pg-standby/internal/pgconf"
)

// Spec is what pg-standby init writes into a minimal instance. Backup
// options are stored as pg_standby.* settings in the instance's own
// postgresql.conf (PostgreSQL accepts qualified custom settings), so the
// configuration lives in one place and not on a unit's command line.
type Spec struct {
	PrimaryConninfo   string
	SlotName          string
	CreateSlot        bool
	Checkpoint        string
	MaxRateKB         int64
	TablespaceMapping map[string]string
	Compression       string
	// DirectIO "off" writes through the page cache; "" leaves the default (on).
	DirectIO string
	// MetricsDir is where the worker writes its node_exporter textfile
	// (pg_standby.metrics_dir); "" leaves it unset.
	MetricsDir string
	// Port of the standby; 0 picks the next free cluster port (Debian) or
	// leaves PostgreSQL's default (a data directory).
	Port int
}

// Settings renders the spec as postgresql.conf lines.
func (s Spec) Settings() string { return s.conninfoSetting() + s.optionSettings() }

func (s Spec) conninfoSetting() string {
	return "\n# The primary this standby copies and then follows; the only place the connection is written.\n" +
		fmt.Sprintf("primary_conninfo = %s\n", pgconf.Quote(s.PrimaryConninfo))
}

func (s Spec) optionSettings() string {
	var b strings.Builder
	if s.SlotName != "" {
		fmt.Fprintf(&b, "primary_slot_name = %s\n", pgconf.Quote(s.SlotName))
	}
	b.WriteString("\n# pg-standby's backup options (see pg-standby(8)); PostgreSQL ignores pg_standby.* settings.\n")
	if s.Checkpoint != "" {
		fmt.Fprintf(&b, "pg_standby.checkpoint = %s\n", pgconf.Quote(s.Checkpoint))
	}
	if s.CreateSlot {
		b.WriteString("pg_standby.create_slot = on\n")
	}
	if s.MaxRateKB != 0 {
		fmt.Fprintf(&b, "pg_standby.max_rate = %d\n", s.MaxRateKB)
	}
	if s.Compression != "" {
		fmt.Fprintf(&b, "pg_standby.compression = %s\n", pgconf.Quote(s.Compression))
	}
	if s.DirectIO != "" {
		fmt.Fprintf(&b, "pg_standby.direct_io = %s\n", s.DirectIO)
	}
	if s.MetricsDir != "" {
		fmt.Fprintf(&b, "pg_standby.metrics_dir = %s\n", pgconf.Quote(s.MetricsDir))
	}
	if len(s.TablespaceMapping) > 0 {
		fmt.Fprintf(&b, "pg_standby.tablespace_mapping = %s\n", pgconf.Quote(FormatMapping(s.TablespaceMapping)))
	}
	return b.String()
}

// FormatMapping renders OLD=NEW pairs as pg_standby.tablespace_mapping holds
// them: separated by ';' (a path may contain ',' but ';' is rare), sorted.
func FormatMapping(m map[string]string) string {
	var pairs []string
	for k, v := range m {
		pairs = append(pairs, k+"="+v)
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ";")
}

// ParseMapping reads pg_standby.tablespace_mapping.
func ParseMapping(s string) (map[string]string, error) {
	m := map[string]string{}
	for _, pair := range strings.Split(s, ";") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		old, new, ok := strings.Cut(pair, "=")
		if !ok || !filepath.IsAbs(old) || !filepath.IsAbs(new) {
			return nil, fmt.Errorf("tablespace mapping %q: want OLD=NEW with absolute paths", pair)
		}
		m[filepath.Clean(old)] = filepath.Clean(new)
	}
	return m, nil
}

// owner is who the instance's files belong to: postgres when run as root.
type owner struct{ uid, gid int }

func fileOwner() (owner, error) {
	if os.Geteuid() != 0 {
		return owner{os.Geteuid(), os.Getegid()}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return owner{}, fmt.Errorf("look up the postgres user (the instance's owner): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return owner{uid, gid}, nil
}

// Create makes the minimal instance: directories, configuration and a
// recorded basebackup.signal. It refuses a data directory holding anything
// but a minimal instance's files, so it can be re-run to change settings.
// Every path is walked without following symlinks and every write goes
// through safeDir (see there): as root, nothing the postgres user planted
// redirects a create, chmod or chown. It returns the file that holds
// primary_conninfo.
func Create(in *Instance, spec Spec) (string, error) {
	own, err := fileOwner()
	if err != nil {
		return "", err
	}
	// Refusals first, before any write.
	if in.Debian != nil {
		if d, err := probeDir(in.Debian.ConfDir); err != nil {
			var r *RefusedError
			if errors.As(err, &r) {
				r.What = "configuration directory"
			}
			return "", err
		} else if d != nil {
			d.Close()
		}
	}
	data, err := probeDir(in.DataDir)
	if err != nil {
		return "", err
	}
	if data != nil {
		err := checkMinimal(in, data)
		data.Close()
		if err != nil {
			return "", err
		}
	}
	connFile := in.ConfFile
	if in.Debian != nil {
		if spec.Port == 0 {
			spec.Port = NextPort(in)
		}
		if connFile, err = writeDebianConfig(in, spec, own); err != nil {
			return "", err
		}
	}
	parent, err := dataParent(in, own)
	if err != nil {
		return "", refuseLink(in.DataDir, err)
	}
	defer parent.Close()
	dd, err := parent.sub(filepath.Base(in.DataDir), true, 0o700, own)
	if err != nil {
		return "", refuseLink(in.DataDir, err)
	}
	defer dd.Close()
	var keep []string
	if in.Debian == nil {
		conf := fmt.Sprintf("# Minimal pg-standby instance, made by pg-standby init on %s.\n", time.Now().UTC().Format(time.DateOnly))
		if spec.Port != 0 {
			conf += fmt.Sprintf("port = %d\n", spec.Port)
		}
		if err := dd.writeFile(filepath.Base(in.ConfFile), conf+spec.Settings(), 0o600, own); err != nil {
			return "", err
		}
		// A Debian primary keeps pg_hba.conf and pg_ident.conf in /etc, so the
		// backup may bring none: the instance has its own, like initdb's.
		for name, content := range map[string]string{"pg_hba.conf": DefaultHBA, "pg_ident.conf": DefaultIdent} {
			if _, ok, err := dd.lstat(name); err != nil {
				return "", err
			} else if !ok {
				if err := dd.writeFile(name, content, 0o600, own); err != nil {
					return "", err
				}
			}
		}
		keep = append(keep, ConfigFiles...)
	}
	return connFile, dd.writeFile(BackupSignal, Pending{Recorded: true, Keep: keep}.encode(), 0o600, own)
}

// dataParent opens the data directory's parent. A Debian instance's
// /var/lib/postgresql/VERSION, when missing, is made as pg_createcluster
// makes it: postgres', 0755, so the worker can reach its data directory.
func dataParent(in *Instance, own owner) (*safeDir, error) {
	parent := filepath.Dir(in.DataDir)
	if in.Debian == nil || filepath.Base(parent) != in.Debian.Version {
		return openDir(parent, true)
	}
	top, err := openDir(filepath.Dir(parent), true)
	if err != nil {
		return nil, err
	}
	defer top.Close()
	return top.ensure(in.Debian.Version, 0o755, own)
}

// probeDir opens an existing directory without following links (nil if it
// does not exist); a link anywhere on the path is refused.
func probeDir(dir string) (*safeDir, error) {
	d, err := openDir(dir, false)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, refuseLink(dir, err)
	}
	return d, nil
}

// refuseLink words a LinkError as a refusal of dir.
func refuseLink(dir string, err error) error {
	var le *LinkError
	if errors.As(err, &le) {
		return &RefusedError{Dir: dir, Reason: le.Error()}
	}
	return err
}

// isTempName reports a safeDir.writeFile temporary left by a crash.
func isTempName(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, ".pg-standby-")
}

// checkMinimal refuses a data directory that holds more than a minimal
// instance would: pg-standby init never overwrites data.
func checkMinimal(in *Instance, d *safeDir) error {
	names, err := d.names()
	if err != nil {
		return err
	}
	allowed := append([]string{BackupSignal, BackupSignal + ".pg-standby"}, ConfigFiles...)
	if in.Debian == nil {
		allowed = append(allowed, "conf.d")
	}
	for _, name := range names {
		if !slices.Contains(allowed, name) && !isTempName(name) {
			return &RefusedError{Dir: in.DataDir, Reason: fmt.Sprintf("it is not empty and not a minimal instance (it holds %s)", name),
				Hint: "pg-standby init only creates new instances or updates minimal ones; choose another directory"}
		}
	}
	if len(names) > 0 {
		if st, ok, err := d.lstat(BackupSignal); err != nil {
			return err
		} else if !ok || st.Mode&unix.S_IFMT != unix.S_IFREG {
			return &RefusedError{Dir: in.DataDir, Reason: "it holds configuration but no " + BackupSignal,
				Hint: "it may be a cluster's configuration; choose another directory"}
		}
	}
	return nil
}
