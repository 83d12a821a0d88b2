package backup

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/pg-standby/pg-standby/internal/basebackup"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/pgconf"
	"github.com/pg-standby/pg-standby/internal/tarstream"
)

// KeepPrimarySettings is the instance setting that keeps the primary's
// commands, libraries and file paths in the copied postgresql.auto.conf.
// What redirects, stops or promotes recovery, includes files or replaces
// the instance's own files is disabled whatever it says.
const KeepPrimarySettings = "pg_standby.keep_primary_settings"

// maxAutoConf bounds the primary's postgresql.auto.conf held in memory;
// ALTER SYSTEM writes one short line per setting.
const maxAutoConf = 1 << 20

// alwaysDisabled reports a setting of the primary's postgresql.auto.conf
// that, read after the standby's own configuration, would include other
// files, point the standby at another server, stop or promote its recovery,
// replace the instance's own files, or steer pg-standby itself.
func alwaysDisabled(name string) bool {
	switch name {
	case "include", "include_if_exists", "include_dir",
		"promote_trigger_file", "hba_file", "ident_file", "config_file", "data_directory":
		return true
	}
	return strings.HasPrefix(name, "primary_") || strings.HasPrefix(name, "recovery_") ||
		strings.HasPrefix(name, "pg_standby.")
}

// runsCode reports a setting that runs a command or loads a library, or
// names a file or directory the server reads or writes (postgresql.conf.sample
// of 15 to 18, and Debian's extension_destdir): the primary's choice for its
// own host, not for this one.
func runsCode(name string) bool {
	switch name {
	case "restore_command", "archive_command", "archive_library", "archive_cleanup_command",
		"ssl_passphrase_command", "dynamic_library_path", "jit_provider",
		"external_pid_file", "log_directory", "log_filename", "unix_socket_directories",
		"ssl_cert_file", "ssl_key_file", "ssl_ca_file", "ssl_crl_file", "ssl_crl_dir", "ssl_dh_params_file",
		"krb_server_keyfile", "stats_temp_directory", "extension_control_path", "extension_destdir":
		return true
	}
	// *_preload_libraries, oauth_validator_libraries, output_plugin_libraries
	return strings.HasSuffix(name, "_libraries")
}

// sanitizeAutoConf comments out, line by line, what the standby must not take
// from the primary's postgresql.auto.conf and returns the new content and the
// disabled settings (name and line). keep keeps what runsCode names.
func sanitizeAutoConf(data []byte, keep bool) ([]byte, []string, error) {
	settings, err := pgconf.Parse(instance.AutoConf, data)
	if err != nil {
		return nil, nil, configErr("the primary's %s: %w; fix it on the primary (ALTER SYSTEM RESET)", instance.AutoConf, err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	var disabled []string
	for _, s := range settings {
		if !alwaysDisabled(s.Name) && (keep || !runsCode(s.Name)) || s.Line < 1 || s.Line > len(lines) {
			continue
		}
		lines[s.Line-1] = "# disabled by pg-standby (copied from the primary): " + lines[s.Line-1]
		disabled = append(disabled, fmt.Sprintf("%s (line %d)", s.Name, s.Line))
	}
	return []byte(strings.Join(lines, "")), disabled, nil
}

// autoConfFilter is the stage of the base archive's chain that rewrites
// postgresql.auto.conf before it is written, so the primary's version never
// lands on disk. It sits behind the checksum stage: the manifest describes
// what the primary sent.
type autoConfFilter struct {
	next tarstream.Stage
	keep bool
	log  *slog.Logger

	in     bool
	member tarstream.Member
	buf    []byte
}

func newAutoConfFilter(next tarstream.Stage, keep bool, log *slog.Logger) *autoConfFilter {
	return &autoConfFilter{next: next, keep: keep, log: log}
}

// Write implements tarstream.Stage.
func (a *autoConfFilter) Write(part tarstream.Part, m *tarstream.Member, p []byte) error {
	if part == tarstream.Header && m.Type == tarstream.File && m.Name == instance.AutoConf {
		if m.Size > maxAutoConf {
			return basebackup.Violation("the primary's %s is %d bytes, more than pg-standby reads (%d)", instance.AutoConf, m.Size, maxAutoConf)
		}
		a.in, a.member, a.buf = true, *m, a.buf[:0]
		return nil
	}
	if !a.in {
		return a.next.Write(part, m, p)
	}
	switch part {
	case tarstream.Contents:
		a.buf = append(a.buf, p...)
		return nil
	case tarstream.Trailer:
		a.in = false
		return a.emit()
	}
	return a.next.Write(part, m, p)
}

func (a *autoConfFilter) emit() error {
	out, disabled, err := sanitizeAutoConf(a.buf, a.keep)
	if err != nil {
		return err
	}
	if len(disabled) > 0 {
		a.log.Warn("disabled settings copied from the primary's "+instance.AutoConf+": they would include files, redirect, stop "+
			"or promote recovery, replace this standby's own files, or run the primary's commands and libraries here; "+
			"set them in this instance's own configuration if it needs them ("+KeepPrimarySettings+" = on keeps commands, "+
			"libraries and file paths): "+strings.Join(disabled, ", "), "settings", strings.Join(disabled, ","))
	}
	m := a.member
	m.Size = int64(len(out))
	if err := a.next.Write(tarstream.Header, &m, nil); err != nil {
		return err
	}
	if len(out) > 0 {
		if err := a.next.Write(tarstream.Contents, &m, out); err != nil {
			return err
		}
	}
	return a.next.Write(tarstream.Trailer, &m, nil)
}

// WriteFrom implements tarstream.SourceStage: only postgresql.auto.conf
// stops here.
func (a *autoConfFilter) WriteFrom(m *tarstream.Member, src tarstream.Source, n int) error {
	if a.in {
		return tarstream.Chunks(a, m, src, n)
	}
	return tarstream.WriteFrom(a.next, m, src, n)
}

// Close implements tarstream.Stage: a member cut short is the parser's to report.
func (a *autoConfFilter) Close() error { return a.next.Close() }
