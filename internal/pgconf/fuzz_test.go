package pgconf

import (
	"bytes"
	"testing"
)

// FuzzParse checks that Parse never panics, that what it returns is well
// formed, and that every value it returns survives Quote and Parse again.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"data_directory = '/var/lib/postgresql/15/main'\t\t# use data in another directory\n",
		"port 5432\nshared_buffers = 128MB\nx = 0x1Fkb\ny = -1.5e-3\n",
		`primary_conninfo = 'host=a password=''p\\q'' application_name=s\101'` + "\n",
		"pg_standby.checkpoint = on\r\ninclude_dir conf.d/\n",
		"x = 'unterminated\n",
		"x = a.b\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		settings, err := Parse("fuzz.conf", data)
		if err != nil {
			if settings != nil {
				t.Fatalf("settings %+v returned with error %v", settings, err)
			}
		}
		for _, s := range settings {
			if s.Name == "" || s.Name != lowerASCII(s.Name) || s.Line < 1 || s.File != "fuzz.conf" {
				t.Fatalf("malformed setting %+v", s)
			}
			if bytes.IndexByte([]byte(s.Value), 0) >= 0 {
				t.Fatalf("value %q holds a NUL", s.Value)
			}
			roundTrip(t, s.Value)
		}
		// Quote must also carry arbitrary NUL-free text.
		if bytes.IndexByte(data, 0) < 0 {
			roundTrip(t, string(data))
		}
	})
}
