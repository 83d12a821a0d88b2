package replconn

import (
	"strings"
	"testing"
)

// TestParseConninfoRedacts: an invalid conninfo's error never shows its
// password, in any of libpq's forms.
func TestParseConninfoRedacts(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"host=h password = 'S3 cret' port=x", "cannot parse host=h password = xxxxx port=x: invalid port"},
		{"host=h password = S3cret port=x", "cannot parse host=h password = xxxxx port=x: invalid port"},
		{`host=h password='S3\'cret' port=x`, "cannot parse host=h password=xxxxx port=x: invalid port"},
		{"postgresql://u:S3cret@h:x/db", "cannot parse postgresql://u:xxxxx@h:x/db: invalid port"},
		{"postgresql://u@h/db?password=S3cret&port=x", "cannot parse postgresql://u@h/db?password=xxxxx&port=x: invalid port"},
		{"host=h sslpassword=S3cret port=x", "cannot parse host=h sslpassword=xxxxx port=x: invalid port"},
	} {
		_, err := ParseConninfo(c.in)
		if err == nil {
			t.Errorf("ParseConninfo(%q) succeeded", c.in)
			continue
		}
		if got := err.Error(); got != c.want || strings.Contains(got, "S3") {
			t.Errorf("ParseConninfo(%q): %q, want %q", c.in, got, c.want)
		}
	}
}
