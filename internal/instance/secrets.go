package instance

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
)

// PrimaryFile is the 0600 file, in a Debian instance's conf.d, that holds
// primary_conninfo when it carries a password: postgresql.conf there is
// 0644, readable by every local user, as pg_createcluster makes it.
const PrimaryFile = "pg-standby-primary.conf"

// conninfoParams returns the keywords of a libpq connection string, in
// either form (key=value with libpq's quoting, or a postgres:// URI), as
// far as this package needs them: password and passfile. A malformed string
// gives what could be read; the real parse (replconn) reports the error.
func conninfoParams(s string) map[string]string {
	m := map[string]string{}
	if strings.HasPrefix(s, "postgresql://") || strings.HasPrefix(s, "postgres://") {
		u, err := url.Parse(s)
		if err != nil {
			return m
		}
		if pw, ok := u.User.Password(); ok {
			m["password"] = pw
		}
		for k, v := range u.Query() {
			if len(v) > 0 {
				m[k] = v[len(v)-1]
			}
		}
		return m
	}
	for s = strings.TrimLeft(s, " \t\r\n\f\v"); s != ""; s = strings.TrimLeft(s, " \t\r\n\f\v") {
		key, rest, ok := strings.Cut(s, "=")
		if !ok {
			return m
		}
		key = strings.TrimRight(key, " \t\r\n\f\v")
		rest = strings.TrimLeft(rest, " \t\r\n\f\v")
		var val strings.Builder
		quoted := strings.HasPrefix(rest, "'")
		if quoted {
			rest = rest[1:]
		}
		i := 0
		for ; i < len(rest); i++ {
			c := rest[i]
			if c == '\\' && i+1 < len(rest) {
				i++
				val.WriteByte(rest[i])
				continue
			}
			if quoted && c == '\'' {
				i++
				break
			}
			if !quoted && strings.IndexByte(" \t\r\n\f\v", c) >= 0 {
				break
			}
			val.WriteByte(c)
		}
		m[key] = val.String()
		s = rest[i:]
	}
	return m
}

// HasPassword reports whether a connection string carries a password itself.
func HasPassword(conninfo string) bool {
	_, ok := conninfoParams(conninfo)["password"]
	return ok
}

// CheckPassfile refuses a password file that libpq, and so the standby's
// walreceiver, would ignore: one that is not a plain file or has any group
// or world access (libpq's passwordFromFile). pgx reads such a file
// regardless, so without this check the backup succeeds and the standby it
// makes cannot authenticate. The file is the one libpq would use for this
// connection string: none if it carries a password, else its passfile, else
// $PGPASSFILE, else ~/.pgpass of home. A missing file is no error. It must
// belong to uid, the user the standby runs as: root's init --check must not
// read, through a link postgres planted, a file postgres cannot.
func CheckPassfile(conninfo, home string, uid int) error {
	p := conninfoParams(conninfo)
	if _, ok := p["password"]; ok {
		return nil
	}
	file, how := p["passfile"], "passfile in the connection string"
	if file == "" {
		file, how = os.Getenv("PGPASSFILE"), "PGPASSFILE"
	}
	if file == "" && home != "" {
		file, how = filepath.Join(home, ".pgpass"), "the default password file"
	}
	if file == "" {
		return nil
	}
	fi, err := os.Stat(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("password file %s (%s): %w", file, how, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("password file %s (%s) is not a plain file: libpq and the standby's walreceiver ignore it, so the standby "+
			"could not authenticate; make it a regular file of mode 0600", file, how)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != uid {
		return fmt.Errorf("password file %s (%s) belongs to uid %d, not to uid %d that the standby runs as, which could not read it; "+
			"give it to that user (mode 0600)", file, how, st.Uid, uid)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("password file %s (%s) has group or world access (mode %04o): libpq and the standby's walreceiver ignore "+
			"such a file, so the standby could not authenticate; run chmod 0600 %s", file, how, fi.Mode().Perm(), file)
	}
	return nil
}

// ExposedSecret returns a warning when the file that sets primary_conninfo
// holds a password and other users may read it; "" otherwise.
func ExposedSecret(conninfo, file string) string {
	if !HasPassword(conninfo) || file == "" {
		return ""
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return ""
	}
	return fmt.Sprintf("%s holds a password in primary_conninfo and is readable by other users (mode %04o): "+
		"run chmod 0600 %s, or move the password to ~postgres/.pgpass (mode 0600)", file, fi.Mode().Perm(), file)
}

// UserHome is the home directory libpq finds for the current user (from the
// password database, as libpq's pqGetHomeDirectory), "" if unknown.
func UserHome() string {
	if u, err := user.Current(); err == nil {
		return u.HomeDir
	}
	return ""
}
