package replconn

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5/pgconn"
)

// ParseConninfoNotes is ParseConninfo that also returns what libpq would
// warn about. libpq ignores a password file that is not a plain file or
// that group or others can access ("permissions should be u=rw (0600) or
// less"); pgconn reads it anyway. Since the walreceiver will not get that
// password, neither does the backup: the password is dropped, and the note
// says why.
func ParseConninfoNotes(conninfo string) (*pgconn.Config, []string, error) {
	cfg, err := ParseConninfo(conninfo)
	if err != nil || cfg.Password == "" {
		return cfg, nil, err
	}
	explicit, err := pgconn.ParseConfig(withKey(conninfo, "passfile", "/nonexistent/pg-standby/no-passfile"))
	if err != nil || explicit.Password == cfg.Password {
		return cfg, nil, nil // the password was given, not read from a file
	}
	path := passfilePath(conninfo)
	fi, err := os.Stat(path)
	var why string
	switch {
	case err != nil:
		return cfg, nil, nil
	case !fi.Mode().IsRegular():
		why = "is not a plain file"
	case fi.Mode().Perm()&0o077 != 0:
		why = fmt.Sprintf("has group or world access (mode %04o)", fi.Mode().Perm())
	default:
		return cfg, nil, nil
	}
	cfg.Password = ""
	return cfg, []string{fmt.Sprintf("password file %s %s: libpq, which the standby's walreceiver uses, ignores it, so pg-standby does too; "+
		"chmod 0600 %s (owned by the user the standby runs as)", path, why, path)}, nil
}

// passfilePath is the password file libpq reads: passfile in the conninfo,
// else PGPASSFILE, else ~/.pgpass.
func passfilePath(conninfo string) string {
	if v, ok := conninfoValue(conninfo, "passfile"); ok && v != "" {
		return v
	}
	if v := os.Getenv("PGPASSFILE"); v != "" {
		return v
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".pgpass")
}

// systemServiceFile is libpq's system-wide service file when conninfo (or
// PGSERVICE) names a service: $PGSYSCONFDIR/pg_service.conf, by default
// Debian libpq's /etc/postgresql-common/pg_service.conf. pgconn reads only
// the user's (servicefile, PGSERVICEFILE or ~/.pg_service.conf).
func systemServiceFile(conninfo string) (string, bool) {
	if v, ok := conninfoValue(conninfo, "service"); !ok || v == "" {
		if os.Getenv("PGSERVICE") == "" {
			return "", false
		}
	}
	dir := os.Getenv("PGSYSCONFDIR")
	if dir == "" {
		dir = "/etc/postgresql-common"
	}
	path := filepath.Join(dir, "pg_service.conf")
	if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
		return "", false
	}
	return path, true
}

// withKey returns conninfo with key set to value (later keys win in both
// syntaxes).
func withKey(conninfo, key, value string) string {
	if isURI(conninfo) {
		sep := "?"
		if strings.Contains(conninfo, "?") {
			sep = "&"
		}
		return conninfo + sep + url.QueryEscape(key) + "=" + url.QueryEscape(value)
	}
	return conninfo + " " + key + "='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(value) + "'"
}

func isURI(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// conninfoValue finds key's last value in a conninfo, in libpq's key=value
// syntax (values bare or single-quoted, backslash escapes) or as a URI
// query parameter.
func conninfoValue(conninfo, key string) (string, bool) {
	if isURI(conninfo) {
		u, err := url.Parse(conninfo)
		if err != nil || !u.Query().Has(key) {
			return "", false
		}
		return u.Query().Get(key), true
	}
	var val string
	found := false
	s := conninfo
	for {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
		if s == "" {
			return val, found
		}
		i := strings.IndexAny(s, "= \t\n\r")
		if i < 0 {
			return val, found
		}
		k := s[:i]
		s = strings.TrimLeftFunc(s[i:], unicode.IsSpace)
		if !strings.HasPrefix(s, "=") {
			return val, found
		}
		s = strings.TrimLeftFunc(s[1:], unicode.IsSpace)
		v, rest, err := conninfoWord(s)
		if err != nil {
			return val, found
		}
		if k == key {
			val, found = v, true
		}
		s = rest
	}
}

func conninfoWord(s string) (string, string, error) {
	var b strings.Builder
	quoted := strings.HasPrefix(s, "'")
	if quoted {
		s = s[1:]
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case quoted && c == '\'':
			return b.String(), s[i+1:], nil
		case !quoted && unicode.IsSpace(rune(c)):
			return b.String(), s[i:], nil
		default:
			b.WriteByte(c)
		}
	}
	if quoted {
		return "", "", errors.New("unterminated quoted string")
	}
	return b.String(), "", nil
}
