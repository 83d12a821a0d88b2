package backup

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/pgconf"
	"github.com/pg-standby/pg-standby/internal/replconn"
)

// resultSettings change what queries return, how values are parsed or how
// results look, in every session that does not set them itself. A standby
// answering like its primary needs the primary's values; the primary's
// postgresql.conf is not copied (on Debian it lives in /etc/postgresql). def
// is PostgreSQL's built-in default ("": taken from the server's environment,
// so always written). Left out on purpose: lc_messages and log_* (messages,
// not results), client_encoding (the client's choice), default_transaction_*
// (a standby refuses serializable and writes), and the planner, timeout and
// resource settings (the standby's own tuning).
var resultSettings = []struct{ name, def string }{
	{"timezone", "GMT"}, {"timezone_abbreviations", "Default"},
	{"datestyle", "ISO, MDY"}, {"intervalstyle", "postgres"},
	{"lc_monetary", ""}, {"lc_numeric", ""}, {"lc_time", ""},
	{"default_text_search_config", "pg_catalog.simple"},
	{"extra_float_digits", "1"}, {"bytea_output", "hex"},
	{"xmlbinary", "base64"}, {"xmloption", "content"},
	{"standard_conforming_strings", "on"}, {"backslash_quote", "safe_encoding"},
	{"array_nulls", "on"}, {"transform_null_equals", "off"},
	{"quote_all_identifiers", "off"}, {"search_path", `"$user", public`},
	{"row_security", "on"}, {"lo_compat_privileges", "off"},
	{"gin_fuzzy_search_limit", "0"},
}

// readResultSettings reads the primary's values with SHOW (it works on a
// physical replication connection); one that cannot be read, or that no
// configuration file could hold, is left out.
func readResultSettings(ctx context.Context, conn *pgconn.PgConn) map[string]string {
	m := map[string]string{}
	for _, rs := range resultSettings {
		v, err := replconn.Show(ctx, conn, rs.name)
		if err != nil || len(v) > 1024 || strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			continue
		}
		m[rs.name] = v
	}
	return m
}

// followPrimary returns the postgresql.auto.conf lines that give the standby
// the primary's result settings, and what to log once they are written.
// conf is the configuration after the copy: a setting in the instance's own
// files is the admin's and wins; one in the copied postgresql.auto.conf is
// the primary's ALTER SYSTEM and already counts.
func (b *attempt) followPrimary(conf *pgconf.Config) (lines []string, logs []string) {
	auto := filepath.Join(b.in.DataDir, instance.AutoConf)
	for _, rs := range resultSettings {
		p, ok := b.primaryRS[rs.name]
		if !ok {
			continue
		}
		if s, ok := conf.Get(rs.name); ok {
			if s.File != auto && s.Value != p {
				b.log.Info(fmt.Sprintf("kept %s = %s (%s line %d), the instance's own setting, rather than the primary's %s",
					rs.name, pgconf.Quote(s.Value), s.File, s.Line, pgconf.Quote(p)), "setting", rs.name)
			}
			continue
		}
		if rs.def != "" && p == rs.def {
			continue // the standby has the same default
		}
		lines = append(lines, rs.name+" = "+pgconf.Quote(p))
		logs = append(logs, fmt.Sprintf("set %s = %s in %s, the primary's value, so the standby answers queries as the primary does",
			rs.name, pgconf.Quote(p), auto))
	}
	return lines, logs
}
