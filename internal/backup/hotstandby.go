package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/pg-standby/pg-standby/internal/durable"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/pgconf"
	"github.com/pg-standby/pg-standby/internal/replconn"
)

// hotStandbySettings must be at least the primary's on a hot standby, or
// PostgreSQL refuses to start it ("insufficient parameter settings"); the
// values are PostgreSQL's defaults.
var hotStandbySettings = []struct {
	name string
	def  int
}{
	{"max_connections", 100}, {"max_worker_processes", 8}, {"max_wal_senders", 10},
	{"max_prepared_transactions", 0}, {"max_locks_per_transaction", 64},
}

// Raise is a hot-standby setting lower here than on the primary.
type Raise struct {
	Setting       string
	Here, Primary int
	Where         string // where the value here comes from
}

// readHotStandby reads the primary's values (SHOW works on a replication
// connection); a setting that cannot be read is left out.
func readHotStandby(set replconn.Settings) map[string]int {
	m := map[string]int{}
	for _, hs := range hotStandbySettings {
		if text, err := set.Get(hs.name); err == nil {
			if n, err := strconv.Atoi(text); err == nil {
				m[hs.name] = n
			}
		}
	}
	return m
}

func hotStandbyNames() []string {
	names := make([]string, len(hotStandbySettings))
	for i, hs := range hotStandbySettings {
		names[i] = hs.name
	}
	return names
}

// lowerThan lists the settings conf (nil: PostgreSQL's defaults) sets lower
// than the primary's.
func lowerThan(conf *pgconf.Config, primary map[string]int) []Raise {
	var out []Raise
	for _, hs := range hotStandbySettings {
		p, ok := primary[hs.name]
		if !ok {
			continue
		}
		r := Raise{Setting: hs.name, Here: hs.def, Primary: p, Where: "PostgreSQL's default"}
		if conf != nil {
			if s, ok := conf.Get(hs.name); ok {
				if n, err := strconv.Atoi(s.Value); err == nil {
					r.Here, r.Where = n, fmt.Sprintf("%s line %d", s.File, s.Line)
				}
			}
		}
		if r.Here < r.Primary {
			out = append(out, r)
		}
	}
	return out
}

// adjustAutoConf appends to the copied postgresql.auto.conf, which
// PostgreSQL reads last, the hot-standby settings lower here than on the
// primary (or the standby refuses to start) and the primary's result
// settings the instance does not set. The instance's own files stay
// untouched and ALTER SYSTEM keeps the values editable. It runs after the
// copy: the primary's postgresql.auto.conf is then in place and counts.
func (b *attempt) adjustAutoConf(ctx context.Context, root *os.Root) error {
	conf, err := pgconf.Load(b.in.ConfFile, b.in.DataDir)
	if err != nil {
		return fmt.Errorf("read the configuration after the copy: %w", err)
	}
	var block []byte
	var warns []string
	if raises := lowerThan(conf, b.primaryHS); len(raises) > 0 {
		block = append(block, "# pg-standby: a hot standby needs at least the primary's value (PostgreSQL refuses to start otherwise)\n"...)
		for _, r := range raises {
			block = fmt.Appendf(block, "%s = '%d'\n", r.Setting, r.Primary)
			warns = append(warns, fmt.Sprintf("raised %s from %d (%s) to the primary's %d in %s/%s: a hot standby refuses to start with less",
				r.Setting, r.Here, r.Where, r.Primary, b.in.DataDir, instance.AutoConf))
		}
	}
	locales := b.locales
	if locales == nil {
		locales = func() map[string]bool { return installedLocales(ctx) }
	}
	lines, infos := b.followPrimary(conf, locales())
	if len(lines) > 0 {
		block = append(block, "# pg-standby: the primary's values of settings that change query results (the instance's configuration does not set them)\n"...)
		block = append(block, strings.Join(lines, "\n")+"\n"...)
	}
	if len(block) == 0 {
		return nil
	}
	if err := appendAutoConf(root, block, b.fileMode); err != nil {
		return err
	}
	for _, w := range warns {
		b.log.Warn(w)
	}
	for _, i := range infos {
		b.log.Info(i)
	}
	return nil
}

// appendAutoConf appends block to postgresql.auto.conf, replacing the file
// atomically and durably.
func appendAutoConf(root *os.Root, block []byte, mode os.FileMode) error {
	data, err := root.ReadFile(instance.AutoConf)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: %w", instance.AutoConf, err)
	}
	if len(data) > 0 && !bytes.HasSuffix(data, []byte("\n")) {
		data = append(data, '\n')
	}
	data = append(data, block...)
	tmp := instance.AutoConf + ".pg-standby"
	if err := durable.WriteFile(root, tmp, data, mode); err != nil {
		return err
	}
	if err := root.Rename(tmp, instance.AutoConf); err != nil {
		return fmt.Errorf("replace %s: %w", instance.AutoConf, err)
	}
	return nil
}

// hotStandbyNotes says, before the copy, what adjustAutoConf will raise.
func hotStandbyNotes(conf *pgconf.Config, primary map[string]int, dataDir string) []string {
	var notes []string
	for _, r := range lowerThan(conf, primary) {
		notes = append(notes, fmt.Sprintf("%s is %d here (%s) but %d on the primary: a hot standby refuses to start with less, "+
			"so pg-standby sets %s = %d in %s/%s after the copy", r.Setting, r.Here, r.Where, r.Primary, r.Setting, r.Primary, dataDir, instance.AutoConf))
	}
	return notes
}
