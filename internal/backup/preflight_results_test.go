package backup_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/testpg"
)

// resultQueries answer differently under the settings the primary below
// changes in its postgresql.conf (which the copy does not carry).
var resultQueries = []string{
	"SHOW timezone",
	"SELECT timestamptz '2024-03-01 12:00+00'::text",
	"SELECT '2024-03-01'::date::text",
	"SELECT to_tsvector('running dogs')::text",
	"SELECT (1/3::float8)::text",
	"SELECT interval '1 day 2 hours'::text",
	"SELECT 1234.5::money::text",
	"SELECT to_char(1234.5, '9G999D9')",
	"SELECT to_char(date '2024-03-01', 'TMMonth')",
	"SELECT 'ab'::bytea::text",
}

// TestResultSettingsFollowPrimary: the primary sets timezone, datestyle,
// text search, float digits, locales and more in its postgresql.conf; the
// instance sets none of them (first case) or its own timezone (second). The
// standby answers every query as the primary does, except that the
// instance's own timezone is kept, and the log says what was set and kept.
// PostgreSQL 15 only: the primary's lc_* name de_DE, which the 17/18 rootfs lacks.
func TestResultSettingsFollowPrimary(t *testing.T) {
	testpg.Require(t)
	p := testpg.Start(t, testpg.Options{Conf: map[string]string{
		"timezone": "Pacific/Chatham", "datestyle": "SQL, DMY", "intervalstyle": "iso_8601",
		"default_text_search_config": "pg_catalog.english", "extra_float_digits": "0",
		"lc_monetary": "de_DE.utf8", "lc_numeric": "de_DE.utf8", "lc_time": "de_DE.utf8",
		"bytea_output": "escape",
	}})
	for _, c := range []struct {
		name  string
		extra []string
	}{
		{"instance sets none", nil},
		{"instance sets timezone", []string{"timezone = 'Europe/Berlin'"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := newInstance(t, p.ConnString(), c.extra...)
			var logs strings.Builder
			if _, err := run(t, backup.Options{DataDir: dir, Log: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
				t.Fatalf("backup: %v", err)
			}
			t.Logf("log:\n%s", logs.String())
			auto := dir + "/postgresql.auto.conf"
			want := []string{
				"set datestyle = 'SQL, DMY' in " + auto + ", the primary's value",
				"set lc_monetary = 'de_DE.utf8' in " + auto,
				"set default_text_search_config = 'pg_catalog.english' in " + auto,
			}
			ownTZ := len(c.extra) > 0
			if ownTZ {
				want = append(want, "kept timezone = 'Europe/Berlin' ("+dir+"/postgresql.conf line 2), the instance's own setting, rather than the primary's 'Pacific/Chatham'")
			} else {
				want = append(want, "set timezone = 'Pacific/Chatham' in "+auto)
			}
			for _, w := range want {
				if !strings.Contains(logs.String(), strings.ReplaceAll(w, `"`, `\"`)) {
					t.Errorf("log lacks %q", w)
				}
			}
			s := testpg.StartStandby(t, dir)
			for _, q := range resultQueries {
				onPrimary, onStandby := p.SQL(t, q), s.SQL(t, q)
				t.Logf("%s: primary %q, standby %q", q, onPrimary, onStandby)
				tzDependent := strings.Contains(q, "timezone") || strings.Contains(q, "timestamptz")
				if ownTZ && tzDependent {
					if onStandby == onPrimary {
						t.Errorf("%s: standby gives the primary's %q, want the instance's own timezone", q, onStandby)
					}
					continue
				}
				if onStandby != onPrimary {
					t.Errorf("%s: standby %q, primary %q", q, onStandby, onPrimary)
				}
			}
			if ownTZ {
				if got := s.SQL(t, "SHOW timezone"); got != "Europe/Berlin" {
					t.Errorf("standby timezone %q, want the instance's Europe/Berlin", got)
				}
			}
		})
	}
}

// TestResultSettingConnectionOverride: primary_conninfo's options set
// timezone for pg-standby's connection, so SHOW answers that, not the
// primary's value: it is not followed, and the log says why.
func TestResultSettingConnectionOverride(t *testing.T) {
	testpg.Require(t)
	p := testpg.Start(t, testpg.Options{Conf: map[string]string{"timezone": "Pacific/Chatham", "datestyle": "SQL, DMY"}})
	dir := newInstance(t, p.ConnString()+" options='-c timezone=Asia/Tokyo'")
	var logs strings.Builder
	if _, err := run(t, backup.Options{DataDir: dir, Log: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
		t.Fatalf("backup: %v", err)
	}
	want := "timezone is set for pg-standby's connection (primary_conninfo's options, or PGTZ or PGOPTIONS in the environment), " +
		"so SHOW does not give the primary's own value and the standby does not follow it"
	if !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, logs.String())
	}
	if strings.Contains(logs.String(), "Asia/Tokyo in") || strings.Contains(logs.String(), "set timezone") {
		t.Errorf("the connection's timezone was taken for the primary's:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "set datestyle = 'SQL, DMY'") {
		t.Errorf("datestyle not followed:\n%s", logs.String())
	}
}

// TestResultSettingFromPrimaryAutoConf: a setting the primary set with ALTER
// SYSTEM arrives in the copied postgresql.auto.conf and already counts: it is
// neither written again nor reported as the instance's own.
func TestResultSettingFromPrimaryAutoConf(t *testing.T) {
	testpg.Require(t)
	p := testpg.Start(t, testpg.Options{})
	p.SQL(t, "ALTER SYSTEM SET timezone = 'Asia/Kolkata'")
	p.SQL(t, "SELECT pg_reload_conf()")
	p.WaitFor(t, "SHOW timezone", "Asia/Kolkata", 10*time.Second)
	dir := newInstance(t, p.ConnString())
	var logs strings.Builder
	if _, err := run(t, backup.Options{DataDir: dir, Log: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
		t.Fatalf("backup: %v", err)
	}
	if strings.Contains(logs.String(), "timezone =") {
		t.Errorf("timezone written or kept though the copied postgresql.auto.conf sets it:\n%s", logs.String())
	}
	s := testpg.StartStandby(t, dir)
	if got := s.SQL(t, "SHOW timezone"); got != "Asia/Kolkata" {
		t.Errorf("standby timezone %q, want the primary's Asia/Kolkata", got)
	}
}
