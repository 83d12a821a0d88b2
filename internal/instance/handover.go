package instance

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/pg-standby/pg-standby/internal/durable"
	"github.com/pg-standby/pg-standby/internal/pgconf"
)

// overriding are settings that a primary's postgresql.auto.conf may carry
// (it was once a standby, or was restored) and that, read after the
// instance's own postgresql.conf, would point the new standby elsewhere or
// stop its recovery.
var overriding = map[string]bool{
	"primary_conninfo": true, "primary_slot_name": true,
	"recovery_target": true, "recovery_target_lsn": true, "recovery_target_name": true,
	"recovery_target_time": true, "recovery_target_xid": true, "recovery_target_inclusive": true,
	"recovery_target_timeline": true, "recovery_target_action": true,
}

// Handover turns a verified, durable copy in root (the data directory) into a
// standby, in an order that leaves a safe directory at every crash point:
//  1. postgresql.auto.conf: the primary's overriding settings commented out;
//  2. standby.signal, durable, before pg_control exists, so the directory
//     can never start as a second primary;
//  3. global/pg_control made visible by rename, durable;
//  4. basebackup.signal removed, durable.
func Handover(root *os.Root, mode os.FileMode, log *slog.Logger) error {
	if err := fixAutoConf(root, mode, log); err != nil {
		return err
	}
	if err := durable.WriteFile(root, StandbySignal, nil, mode); err != nil {
		return err
	}
	if err := durable.SyncDir(root, "."); err != nil {
		return err
	}
	if err := root.Rename(PgControlPending, PgControl); err != nil {
		return fmt.Errorf("make %s visible: %w", PgControl, err)
	}
	if err := durable.SyncDir(root, "global"); err != nil {
		return err
	}
	if err := root.Remove(BackupSignal); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", BackupSignal, err)
	}
	return durable.SyncDir(root, ".")
}

func fixAutoConf(root *os.Root, mode os.FileMode, log *slog.Logger) error {
	data, err := root.ReadFile(AutoConf)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read %s: %w", AutoConf, err)
	}
	settings, err := pgconf.Parse(AutoConf, data)
	if err != nil {
		return fmt.Errorf("the primary's %s: %w", AutoConf, err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	changed := false
	for _, s := range settings {
		if overriding[s.Name] && s.Line >= 1 && s.Line <= len(lines) {
			log.Warn("disabled a setting copied from the primary's "+AutoConf+": it would override this standby's own configuration",
				"setting", s.Name, "line", s.Line)
			lines[s.Line-1] = "# disabled by pg-standby (copied from the primary): " + lines[s.Line-1]
			changed = true
		}
	}
	if !changed {
		return nil
	}
	tmp := AutoConf + ".pg-standby"
	if err := durable.WriteFile(root, tmp, []byte(strings.Join(lines, "")), mode); err != nil {
		return err
	}
	if err := root.Rename(tmp, AutoConf); err != nil {
		return fmt.Errorf("replace %s: %w", AutoConf, err)
	}
	return nil
}

// EnsureAuthFiles writes default pg_hba.conf and pg_ident.conf into a data
// directory that has none after the backup (a Debian primary keeps them in
// /etc) and whose configuration names no other hba_file/ident_file: without
// them postgres refuses to start.
func EnsureAuthFiles(root *os.Root, conf *pgconf.Config, mode os.FileMode, log *slog.Logger) error {
	for _, f := range []struct{ name, setting, content string }{
		{"pg_hba.conf", "hba_file", DefaultHBA}, {"pg_ident.conf", "ident_file", DefaultIdent},
	} {
		if _, ok := conf.Get(f.setting); ok {
			continue
		}
		if _, err := root.Lstat(f.name); err == nil {
			continue
		}
		log.Warn("the backup brought no "+f.name+" (the primary keeps it elsewhere); wrote a default one: review it", "file", f.name)
		if err := durable.WriteFile(root, f.name, []byte(f.content), mode); err != nil {
			return err
		}
	}
	return nil
}
