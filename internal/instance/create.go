package instance

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

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
	// Port of the standby; 0 picks the next free cluster port (Debian) or
	// leaves PostgreSQL's default (a data directory).
	Port int
}

// Settings renders the spec as postgresql.conf lines.
func (s Spec) Settings() string {
	var b strings.Builder
	b.WriteString("\n# The primary this standby copies and then follows; the only place the connection is written.\n")
	fmt.Fprintf(&b, "primary_conninfo = %s\n", pgconf.Quote(s.PrimaryConninfo))
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
func Create(in *Instance, spec Spec) error {
	if err := checkMinimal(in); err != nil {
		return err
	}
	own, err := fileOwner()
	if err != nil {
		return err
	}
	var keep []string
	if in.Debian != nil {
		if spec.Port == 0 {
			spec.Port = NextPort(in)
		}
		if err := writeDebianConfig(in, spec, own); err != nil {
			return err
		}
	} else {
		conf := fmt.Sprintf("# Minimal pg-standby instance, made by pg-standby init on %s.\n", time.Now().UTC().Format(time.DateOnly))
		if spec.Port != 0 {
			conf += fmt.Sprintf("port = %d\n", spec.Port)
		}
		if err := mkdirOwned(in.DataDir, 0o700, own); err != nil {
			return err
		}
		if err := writeOwned(in.ConfFile, conf+spec.Settings(), 0o600, own); err != nil {
			return err
		}
		// A Debian primary keeps pg_hba.conf and pg_ident.conf in /etc, so the
		// backup may bring none: the instance has its own, like initdb's.
		for name, content := range map[string]string{"pg_hba.conf": DefaultHBA, "pg_ident.conf": DefaultIdent} {
			if _, err := os.Stat(filepath.Join(in.DataDir, name)); errors.Is(err, fs.ErrNotExist) {
				if err := writeOwned(filepath.Join(in.DataDir, name), content, 0o600, own); err != nil {
					return err
				}
			}
		}
		keep = append(keep, ConfigFiles...)
	}
	if err := mkdirOwned(in.DataDir, 0o700, own); err != nil {
		return err
	}
	root, err := os.OpenRoot(in.DataDir)
	if err != nil {
		return fmt.Errorf("open %s: %w", in.DataDir, err)
	}
	defer root.Close()
	if err := WritePending(root, Pending{Recorded: true, Keep: keep}, 0o600); err != nil {
		return err
	}
	return os.Lchown(filepath.Join(in.DataDir, BackupSignal), own.uid, own.gid)
}

// checkMinimal refuses a data directory that holds more than a minimal
// instance would: pg-standby init never overwrites data.
func checkMinimal(in *Instance) error {
	entries, err := os.ReadDir(in.DataDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", in.DataDir, err)
	}
	allowed := append([]string{BackupSignal, BackupSignal + ".pg-standby"}, ConfigFiles...)
	if in.Debian == nil {
		allowed = append(allowed, "conf.d")
	}
	for _, e := range entries {
		if !slices.Contains(allowed, e.Name()) {
			return &RefusedError{Dir: in.DataDir, Reason: fmt.Sprintf("it is not empty and not a minimal instance (it holds %s)", e.Name()),
				Hint: "pg-standby init only creates new instances or updates minimal ones; choose another directory"}
		}
	}
	if len(entries) > 0 {
		if _, err := os.Stat(filepath.Join(in.DataDir, BackupSignal)); err != nil {
			return &RefusedError{Dir: in.DataDir, Reason: "it holds configuration but no " + BackupSignal,
				Hint: "it may be a cluster's configuration; choose another directory"}
		}
	}
	return nil
}

func mkdirOwned(dir string, mode os.FileMode, own owner) error {
	if err := os.MkdirAll(dir, mode); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		return fmt.Errorf("set mode of %s: %w", dir, err)
	}
	if err := os.Lchown(dir, own.uid, own.gid); err != nil {
		return fmt.Errorf("give %s to the instance's owner: %w", dir, err)
	}
	return nil
}

// writeOwned writes a configuration file atomically (temp file, rename).
func writeOwned(path, content string, mode os.FileMode, own owner) error {
	tmp := path + ".pg-standby-new"
	if err := os.WriteFile(tmp, []byte(content), mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Lchown(tmp, own.uid, own.gid); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("give %s to the instance's owner: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
