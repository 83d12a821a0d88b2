package backup

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

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
// physical replication connection); one that cannot be read, that no
// configuration file could hold, or that the connection itself sets (SHOW
// then answers the connection's value, not the primary's) is left out.
func (b *attempt) readResultSettings(shown replconn.Settings) map[string]string {
	m := map[string]string{}
	set := connectionSets(b.connCfg.RuntimeParams)
	for _, rs := range resultSettings {
		if set[rs.name] {
			b.log.Warn(fmt.Sprintf("%s is set for pg-standby's connection (primary_conninfo's options, or PGTZ or PGOPTIONS in the environment), "+
				"so SHOW does not give the primary's own value and the standby does not follow it", rs.name), "setting", rs.name)
			continue
		}
		v, err := shown.Get(rs.name)
		if err != nil || len(v) > 1024 || strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			continue
		}
		m[rs.name] = v
	}
	return m
}

// connectionSets lists the settings a connection's startup packet sets: as
// parameters of their own, or as -c name=value / --name=value in options.
func connectionSets(params map[string]string) map[string]bool {
	norm := func(s string) string {
		name, _, _ := strings.Cut(s, "=")
		return strings.ReplaceAll(strings.ToLower(name), "-", "_")
	}
	set := map[string]bool{}
	for k := range params {
		set[norm(k)] = true
	}
	words := strings.Fields(params["options"])
	for i, w := range words {
		switch {
		case strings.HasPrefix(w, "--"):
			set[norm(w[2:])] = true
		case w == "-c" && i+1 < len(words):
			set[norm(words[i+1])] = true
		case strings.HasPrefix(w, "-c"):
			set[norm(w[2:])] = true
		}
	}
	return set
}

// followPrimary returns the postgresql.auto.conf lines that give the standby
// the primary's result settings, and what to log once they are written.
// conf is the configuration after the copy: a setting in the instance's own
// files is the admin's and wins; one in the copied postgresql.auto.conf is
// the primary's ALTER SYSTEM and already counts.
// An lc_* value naming a locale not installed here (locales non-nil) is not
// written: the standby would refuse to start.
func (b *attempt) followPrimary(conf *pgconf.Config, locales map[string]bool) (lines []string, logs []string) {
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
		if strings.HasPrefix(rs.name, "lc_") && locales != nil && !locales[normLocale(p)] {
			b.log.Warn(fmt.Sprintf("the primary's %s = %s is not a locale installed here (%s -a), so it is not set: "+
				"the standby would refuse to start; install it (Debian: dpkg-reconfigure locales) and set %s in %s",
				rs.name, pgconf.Quote(p), localeBin, rs.name, b.in.ConfFile), "setting", rs.name)
			continue
		}
		lines = append(lines, rs.name+" = "+pgconf.Quote(p))
		logs = append(logs, fmt.Sprintf("set %s = %s in %s, the primary's value, so the standby answers queries as the primary does",
			rs.name, pgconf.Quote(p), auto))
	}
	return lines, logs
}

// localeBin lists the locales installed here; a standby given an lc_*
// setting naming another refuses to start ("invalid value for parameter").
const localeBin = "/usr/bin/locale"

// installedLocales returns the locales `locale -a` lists, normalized, or nil
// when it cannot tell (then the primary's values are written unchecked).
func installedLocales(ctx context.Context) map[string]bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, localeBin, "-a")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil
	}
	if err := cmd.Start(); err != nil {
		return nil
	}
	m := map[string]bool{"C": true, "POSIX": true}
	sc := bufio.NewScanner(io.LimitReader(out, 4<<20))
	for sc.Scan() {
		if name := strings.TrimSpace(sc.Text()); name != "" {
			m[normLocale(name)] = true
		}
	}
	_, _ = io.Copy(io.Discard, out)
	if cmd.Wait() != nil || sc.Err() != nil {
		return nil
	}
	return m
}

// lookupLocales runs installedLocales while the caller goes on; the
// function it returns waits for the answer (again: the same answer).
func lookupLocales(ctx context.Context) func() map[string]bool {
	ch := make(chan map[string]bool, 1)
	go func() { ch <- installedLocales(ctx) }()
	return sync.OnceValue(func() map[string]bool { return <-ch })
}

// normLocale spells a locale name as glibc compares it: the codeset
// lower-case without punctuation (de_DE.UTF-8 is de_DE.utf8).
func normLocale(name string) string {
	base, mod, hasMod := strings.Cut(name, "@")
	lang, codeset, hasCS := strings.Cut(base, ".")
	if hasCS {
		codeset = strings.Map(func(r rune) rune {
			switch {
			case r >= 'A' && r <= 'Z':
				return r + 'a' - 'A'
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
				return r
			}
			return -1
		}, codeset)
		lang += "." + codeset
	}
	if hasMod {
		lang += "@" + mod
	}
	return lang
}
