package backup

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/pg-standby/pg-standby/internal/instance"
)

func TestNormLocale(t *testing.T) {
	for in, want := range map[string]string{
		"de_DE.UTF-8": "de_DE.utf8", "de_DE.utf8": "de_DE.utf8", "C.UTF-8": "C.utf8",
		"sr_RS.UTF-8@latin": "sr_RS.utf8@latin", "en_US": "en_US", "C": "C",
	} {
		if got := normLocale(in); got != want {
			t.Errorf("normLocale(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLocaleNotInstalledNotFollowed: an lc_* value of the primary naming a
// locale this host lacks is not written (the standby would refuse to start)
// and the log says what to do; one installed here is written.
func TestLocaleNotInstalledNotFollowed(t *testing.T) {
	if _, err := os.Stat(localeBin); err != nil {
		t.Skipf("no %s", localeBin)
	}
	locales := installedLocales(context.Background())
	if locales == nil || !locales["C"] {
		t.Fatalf("installedLocales = %v", locales)
	}
	if !locales[normLocale("C.UTF-8")] {
		t.Fatalf("C.UTF-8 (glibc's built-in) not listed: %v", locales)
	}
	var logs strings.Builder
	b := &attempt{in: &instance.Instance{DataDir: "/srv/sb", ConfFile: "/srv/sb/postgresql.conf"},
		log:       slog.New(slog.NewTextHandler(&logs, nil)),
		primaryRS: map[string]string{"lc_monetary": "xx_XX.UTF-8", "lc_numeric": "C.UTF-8", "timezone": "Pacific/Chatham"}}
	lines, _ := b.followPrimary(nil, locales)
	if got := strings.Join(lines, "\n"); got != "timezone = 'Pacific/Chatham'\nlc_numeric = 'C.UTF-8'" {
		t.Errorf("lines:\n%s", got)
	}
	want := "the primary's lc_monetary = 'xx_XX.UTF-8' is not a locale installed here (/usr/bin/locale -a), so it is not set: " +
		"the standby would refuse to start; install it (Debian: dpkg-reconfigure locales) and set lc_monetary in /srv/sb/postgresql.conf"
	if !strings.Contains(logs.String(), strings.ReplaceAll(want, `"`, `\"`)) {
		t.Errorf("log lacks %q:\n%s", want, logs.String())
	}
}

// TestConnectionSets: a setting the connection sets itself (PGTZ, options)
// is recognised, so its SHOW answer is not taken for the primary's.
func TestConnectionSets(t *testing.T) {
	set := connectionSets(map[string]string{"timezone": "UTC", "application_name": "x",
		"options": `-c search_path=a --extra-float-digits=3 -cDateStyle=ISO`})
	for _, name := range []string{"timezone", "search_path", "extra_float_digits", "datestyle"} {
		if !set[name] {
			t.Errorf("%s not recognised as set: %v", name, set)
		}
	}
	if set["timezone_abbreviations"] || set["lc_time"] {
		t.Errorf("too much recognised: %v", set)
	}
}
