package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/pg-standby/pg-standby/internal/durable"
	"github.com/pg-standby/pg-standby/internal/instance"
)

// finishCopyOnly ends a CopyOnly backup of a verified, durable copy:
// global/pg_control made visible by rename, durable, then basebackup.signal
// removed, durable. Until the rename the directory is no cluster at all, so
// a copy killed at any point never looks valid; no standby.signal is
// written: the caller configures recovery itself.
func finishCopyOnly(root *os.Root) error {
	if err := root.Rename(instance.PgControlPending, instance.PgControl); err != nil {
		return fmt.Errorf("make %s visible: %w", instance.PgControl, err)
	}
	if err := durable.SyncDir(root, "global"); err != nil {
		return err
	}
	if err := root.Remove(instance.BackupSignal); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", instance.BackupSignal, err)
	}
	return durable.SyncDir(root, ".")
}
