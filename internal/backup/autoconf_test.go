package backup

import (
	"strings"
	"testing"
)

// TestSanitizeAutoConf: which settings of the primary's postgresql.auto.conf
// are disabled, with and without pg_standby.keep_primary_settings.
func TestSanitizeAutoConf(t *testing.T) {
	always := []string{"include", "include_if_exists", "include_dir", "primary_conninfo", "primary_slot_name",
		"recovery_target", "recovery_target_action", "recovery_min_apply_delay", "recovery_end_command",
		"promote_trigger_file", "hba_file", "ident_file", "config_file", "data_directory", "pg_standby.tablespace_mapping",
		"pg_standby.keep_primary_settings", "Primary_Conninfo"}
	code := []string{"restore_command", "archive_command", "archive_library", "archive_cleanup_command",
		"ssl_passphrase_command", "shared_preload_libraries", "session_preload_libraries", "local_preload_libraries",
		"oauth_validator_libraries", "dynamic_library_path", "extension_control_path", "extension_destdir", "jit_provider",
		"external_pid_file", "log_directory", "log_filename", "unix_socket_directories", "ssl_cert_file", "ssl_key_file",
		"ssl_ca_file", "ssl_crl_file", "ssl_crl_dir", "ssl_dh_params_file", "krb_server_keyfile"}
	harmless := []string{"work_mem", "max_connections", "hot_standby", "archive_mode", "wal_level", "cluster_name"}
	var in strings.Builder
	for _, group := range [][]string{always, code, harmless} {
		for _, name := range group {
			in.WriteString(name + " = 'x'\n")
		}
	}
	for _, keep := range []bool{false, true} {
		out, disabled, err := sanitizeAutoConf([]byte(in.String()), keep)
		if err != nil {
			t.Fatal(err)
		}
		want := len(always) + len(code)
		if keep {
			want = len(always)
		}
		if len(disabled) != want {
			t.Errorf("keep=%v: %d disabled, want %d: %v", keep, len(disabled), want, disabled)
		}
		for i, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
			name := strings.TrimPrefix(line, "# disabled by pg-standby (copied from the primary): ")
			name, _, _ = strings.Cut(name, " ")
			off := i < len(always) || i < len(always)+len(code) && !keep
			if got := strings.HasPrefix(line, "# disabled by pg-standby"); got != off {
				t.Errorf("keep=%v: %s disabled = %v, want %v", keep, name, got, off)
			}
		}
	}
	if _, _, err := sanitizeAutoConf([]byte("work_mem = = 1\n"), false); err == nil ||
		!strings.Contains(err.Error(), "the primary's postgresql.auto.conf: ") || KindOf(err) != Config {
		t.Errorf("syntax error: %v (%v), want a configuration error naming the file", err, KindOf(err))
	}
}
