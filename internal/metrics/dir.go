package metrics

import (
	"os"

	"golang.org/x/sys/unix"
)

// DebianDir is the textfile directory of Debian's prometheus-node-exporter,
// used when Setting is absent and the worker may write there.
const DebianDir = "/var/lib/prometheus/node-exporter"

// Dir is the metrics directory for an instance's pg_standby.metrics_dir
// (instance.Settings checks it is absolute): its value when set ("" is no
// metrics), else DebianDir when it is a directory this process may write,
// else "".
func Dir(setting *string) string {
	if setting != nil {
		return *setting
	}
	if fi, err := os.Stat(DebianDir); err != nil || !fi.IsDir() || unix.Access(DebianDir, unix.W_OK) != nil {
		return ""
	}
	return DebianDir
}
