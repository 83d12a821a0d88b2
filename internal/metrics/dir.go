package metrics

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/pg-standby/pg-standby/internal/pgconf"
)

// Setting is the instance setting naming the metrics directory; set to ”
// it turns metrics off.
const Setting = "pg_standby.metrics_dir"

// DebianDir is the textfile directory of Debian's prometheus-node-exporter,
// used when Setting is absent and the worker may write there.
const DebianDir = "/var/lib/prometheus/node-exporter"

// Dir is the metrics directory for an instance's configuration: the
// setting's value, else DebianDir when it is a directory this process may
// write, else "" (no metrics). A relative path is a configuration error.
func Dir(conf *pgconf.Config) (string, error) {
	if s, ok := conf.Get(Setting); ok {
		if s.Value != "" && !filepath.IsAbs(s.Value) {
			return "", fmt.Errorf("%s in %s line %d: %q is not an absolute path", s.Name, s.File, s.Line, s.Value)
		}
		return s.Value, nil
	}
	if fi, err := os.Stat(DebianDir); err != nil || !fi.IsDir() || unix.Access(DebianDir, unix.W_OK) != nil {
		return "", nil
	}
	return DebianDir, nil
}
