package instance

import (
	"strings"
	"testing"
)

// TestDebianConfWithoutSample: without the version's template, init writes
// the minimal file, says why, and still sets pg_createcluster's settings.
func TestDebianConfWithoutSample(t *testing.T) {
	old := debianSample
	debianSample = t.TempDir() + "/%s/postgresql.conf.sample"
	defer func() { debianSample = old }()
	in := &Instance{DataDir: "/var/lib/postgresql/15/x", Debian: &Debian{Version: "15", Name: "x", ConfDir: "/etc/postgresql/15/x"}}
	conf := debianConf(in, Spec{Port: 5441})
	for _, want := range []string{"was not readable", "\nport = 5441\n", "\ncluster_name = '15/x'\n", "\ninclude_dir = 'conf.d'\n",
		"\ndata_directory = '/var/lib/postgresql/15/x'\n"} {
		if !strings.Contains(conf, want) {
			t.Errorf("missing %q in\n%s", want, conf)
		}
	}
	for _, bad := range []string{"\ntimezone", "\ndatestyle", "\nlc_", "\ndefault_text_search_config"} {
		if strings.Contains(conf, bad) {
			t.Errorf("active %q in\n%s", bad, conf)
		}
	}
}

// TestSetConfLine follows set_conffile_value: active line first, then the
// first commented one (its comment kept), else appended.
func TestSetConfLine(t *testing.T) {
	lines := []string{"#port = 5432\t\t# (change requires restart)", "#ssl = off", "ssl = on # x"}
	got := setConfLine(lines, "port", "5441")
	got = setConfLine(got, "ssl", "off")
	got = setConfLine(got, "cluster_name", "'15/x'")
	want := []string{"port = 5441\t\t# (change requires restart)", "#ssl = off", "ssl = off # x", "cluster_name = '15/x'"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q, want %q", got, want)
	}
}
