package replconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sys/unix"
)

// Where pgconn and libpq differ for primary_conninfo, and what is done here:
//   - target_session_attrs: pgconn decides by running SQL (SHOW
//     transaction_read_only, SELECT pg_is_in_recovery()), which a physical
//     replication connection refuses. libpq (14+) decides by the
//     in_hot_standby and default_transaction_read_only ParameterStatus the
//     server sends at connection start: so does validate.
//   - keepalives, keepalives_idle/_interval/_count, tcp_user_timeout and
//     load_balance_hosts are libpq connection options; pgconn would send them
//     to the server as settings, which fails the connection ("unrecognized
//     configuration parameter"). They are applied to the dialer and the host
//     list instead; fallback_application_name is used when application_name
//     is not set, as libpq does.
//   - ssl_min_protocol_version/ssl_max_protocol_version set the TLS versions.
//   - Unknown keys: pgconn sends them to the server as settings; libpq
//     refuses them ("invalid connection option"), so does ParseConninfo.
//   - hostaddr: each host is dialled at its numeric address, its name kept
//     for TLS verification (and the passfile), as libpq does.
//   - Options pgconn cannot honour (sslcrl, sslcrldir, requirepeer,
//     gssencmode=require) are refused with the reason rather than ignored.
//   - service: pgconn reads only the user's service file; ParseConninfo
//     falls back to the system's ($PGSYSCONFDIR/pg_service.conf) as libpq.
//   - passfile: pgconn does not check its mode; ParseConninfoNotes drops a
//     password from a file libpq would ignore.
//   - Still different: pgconn looks the passfile up for the first host only.

// libpqOnly are libpq options pgconn passes on to the server as settings.
var libpqOnly = []string{
	"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout",
	"load_balance_hosts", "fallback_application_name", "ssl_min_protocol_version", "ssl_max_protocol_version",
	"sslcompression", "gssencmode", "gsslib", "gssdelegation", "hostaddr", "sslcrl", "sslcrldir", "requirepeer",
}

// serverParams are the libpq options sent to the server at startup: any
// other key pgconn left in RuntimeParams is one libpq does not know.
var serverParams = map[string]bool{"application_name": true, "options": true, "client_encoding": true, "replication": true}

// applyLibpq moves the libpq-only options out of cfg.RuntimeParams and
// applies them as libpq would.
func applyLibpq(cfg *pgconn.Config) error {
	opt := map[string]string{}
	for _, k := range libpqOnly {
		if v, ok := cfg.RuntimeParams[k]; ok {
			opt[k] = v
			delete(cfg.RuntimeParams, k)
		}
	}
	for k := range cfg.RuntimeParams {
		if !serverParams[k] {
			return fmt.Errorf("invalid connection option %q (libpq, which the standby's walreceiver uses, rejects it)", k)
		}
	}
	if v, ok := opt["hostaddr"]; ok {
		if err := useHostaddr(cfg, v); err != nil {
			return err
		}
	}
	for _, k := range []string{"sslcrl", "sslcrldir", "requirepeer"} {
		if _, ok := opt[k]; ok {
			return fmt.Errorf("%s is not supported by pg-standby's connection (pgx): remove it from primary_conninfo", k)
		}
	}
	switch opt["gssencmode"] {
	case "", "disable", "prefer", "allow":
	default:
		return fmt.Errorf("gssencmode=%s is not supported by pg-standby's connection (pgx): use sslmode for encryption", opt["gssencmode"])
	}
	if cfg.RuntimeParams["application_name"] == "" && opt["fallback_application_name"] != "" {
		cfg.RuntimeParams["application_name"] = opt["fallback_application_name"]
	}
	if err := setDialer(cfg, opt); err != nil {
		return err
	}
	if err := setTLSVersions(cfg, opt); err != nil {
		return err
	}
	switch opt["load_balance_hosts"] {
	case "", "disable":
	case "random":
		loadBalance(cfg)
	default:
		return fmt.Errorf("invalid load_balance_hosts value %q: want disable or random", opt["load_balance_hosts"])
	}
	return setValidate(cfg)
}

// useHostaddr makes the i-th host of the list dial the i-th numeric address
// of hostaddr; the host name stays in the TLS configuration pgconn built
// from it (ServerName), as libpq verifies the certificate against host.
func useHostaddr(cfg *pgconn.Config, list string) error {
	addrs := strings.Split(list, ",")
	all := append([]*pgconn.FallbackConfig{{Host: cfg.Host, Port: cfg.Port, TLSConfig: cfg.TLSConfig}}, cfg.Fallbacks...)
	group := make([]int, len(all)) // host index of each entry (TLS and plain of one host share it)
	for j := range all {
		if j > 0 {
			group[j] = group[j-1]
			if all[j].Host != all[j-1].Host || all[j].Port != all[j-1].Port {
				group[j]++
			}
		}
		if strings.HasPrefix(all[j].Host, "/") {
			return fmt.Errorf("hostaddr with a unix socket host (%s) is not supported: give host=ADDRESS instead", all[j].Host)
		}
	}
	if hosts := group[len(all)-1] + 1; hosts != len(addrs) {
		return fmt.Errorf("could not match %d host names to %d hostaddr values", hosts, len(addrs))
	}
	for j, fb := range all {
		addr := strings.TrimSpace(addrs[group[j]])
		if net.ParseIP(addr) == nil {
			return fmt.Errorf("invalid hostaddr %q: want a numeric IP address", addr)
		}
		all[j] = &pgconn.FallbackConfig{Host: addr, Port: fb.Port, TLSConfig: fb.TLSConfig}
	}
	cfg.Host, cfg.Port, cfg.TLSConfig, cfg.Fallbacks = all[0].Host, all[0].Port, all[0].TLSConfig, all[1:]
	return nil
}

// setDialer builds the dialer from connect_timeout and the keepalive
// options. libpq's defaults: keepalives on, the kernel's idle, interval and
// count, no TCP_USER_TIMEOUT.
func setDialer(cfg *pgconn.Config, opt map[string]string) error {
	secs := func(k string) (time.Duration, error) {
		v, ok := opt[k]
		if !ok || v == "" {
			return -1, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid %s value %q: want a number of seconds", k, v)
		}
		return time.Duration(n) * time.Second, nil
	}
	ka := net.KeepAliveConfig{Enable: opt["keepalives"] != "0"}
	var err error
	if ka.Idle, err = secs("keepalives_idle"); err != nil {
		return err
	}
	if ka.Interval, err = secs("keepalives_interval"); err != nil {
		return err
	}
	count, err := secs("keepalives_count")
	if err != nil {
		return err
	}
	ka.Count = int(count / time.Second)
	if v, ok := opt["keepalives"]; ok && v != "0" && v != "1" {
		return fmt.Errorf("invalid keepalives value %q: want 0 or 1", v)
	}
	d := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAliveConfig: ka}
	if !ka.Enable {
		d.KeepAlive = -1
	}
	if v := opt["tcp_user_timeout"]; v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms < 0 {
			return fmt.Errorf("invalid tcp_user_timeout value %q: want milliseconds", v)
		}
		d.Control = func(network, _ string, c syscall.RawConn) error {
			if network != "tcp" && network != "tcp4" && network != "tcp6" {
				return nil
			}
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, ms)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	cfg.DialFunc = d.DialContext
	return nil
}

func setTLSVersions(cfg *pgconn.Config, opt map[string]string) error {
	versions := map[string]uint16{"TLSv1": tls.VersionTLS10, "TLSv1.1": tls.VersionTLS11, "TLSv1.2": tls.VersionTLS12, "TLSv1.3": tls.VersionTLS13}
	var lo, hi uint16 = tls.VersionTLS12, 0 // libpq's default minimum is TLSv1.2
	if v := opt["ssl_min_protocol_version"]; v != "" {
		if lo = versions[v]; lo == 0 {
			return fmt.Errorf("invalid ssl_min_protocol_version value %q", v)
		}
	}
	if v := opt["ssl_max_protocol_version"]; v != "" {
		if hi = versions[v]; hi == 0 {
			return fmt.Errorf("invalid ssl_max_protocol_version value %q", v)
		}
	}
	set := func(t *tls.Config) {
		if t != nil {
			t.MinVersion, t.MaxVersion = lo, hi
		}
	}
	set(cfg.TLSConfig)
	for _, fb := range cfg.Fallbacks {
		set(fb.TLSConfig)
	}
	return nil
}

// loadBalance shuffles the hosts, keeping each host's TLS-then-plain pair
// together, and the addresses each name resolves to, as libpq's
// load_balance_hosts=random does.
func loadBalance(cfg *pgconn.Config) {
	all := append([]*pgconn.FallbackConfig{{Host: cfg.Host, Port: cfg.Port, TLSConfig: cfg.TLSConfig}}, cfg.Fallbacks...)
	var groups [][]*pgconn.FallbackConfig
	for i, fb := range all {
		if i > 0 && fb.Host == all[i-1].Host && fb.Port == all[i-1].Port {
			groups[len(groups)-1] = append(groups[len(groups)-1], fb)
			continue
		}
		groups = append(groups, []*pgconn.FallbackConfig{fb})
	}
	rand.Shuffle(len(groups), func(i, j int) { groups[i], groups[j] = groups[j], groups[i] })
	all = all[:0]
	for _, g := range groups {
		all = append(all, g...)
	}
	cfg.Host, cfg.Port, cfg.TLSConfig, cfg.Fallbacks = all[0].Host, all[0].Port, all[0].TLSConfig, all[1:]
	lookup := cfg.LookupFunc
	cfg.LookupFunc = func(ctx context.Context, host string) ([]string, error) {
		addrs, err := lookup(ctx, host)
		rand.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
		return addrs, err
	}
}

// Errors of target_session_attrs, as libpq words them.
var (
	ErrReadOnly   = errors.New("server is read-only (in hot standby or default_transaction_read_only = on), target_session_attrs wants read-write")
	ErrReadWrite  = errors.New("server is not read-only, target_session_attrs wants read-only")
	ErrInStandby  = errors.New("server is in hot standby mode, target_session_attrs wants primary")
	ErrNotStandby = errors.New("server is not in hot standby mode, target_session_attrs wants standby")
)

// setValidate replaces pgconn's SQL-based target_session_attrs checks by
// ones on the ParameterStatus a PostgreSQL 14+ server sends at startup.
func setValidate(cfg *pgconn.Config) error {
	if cfg.ValidateConnect == nil {
		return nil
	}
	is := func(f pgconn.ValidateConnectFunc) bool {
		return reflect.ValueOf(cfg.ValidateConnect).Pointer() == reflect.ValueOf(f).Pointer()
	}
	switch {
	case is(pgconn.ValidateConnectTargetSessionAttrsReadWrite):
		cfg.ValidateConnect = want(func(standby, ro bool) error { return iff(standby || ro, ErrReadOnly) })
	case is(pgconn.ValidateConnectTargetSessionAttrsReadOnly):
		cfg.ValidateConnect = want(func(standby, ro bool) error { return iff(!standby && !ro, ErrReadWrite) })
	case is(pgconn.ValidateConnectTargetSessionAttrsPrimary):
		cfg.ValidateConnect = want(func(standby, _ bool) error { return iff(standby, ErrInStandby) })
	case is(pgconn.ValidateConnectTargetSessionAttrsStandby):
		cfg.ValidateConnect = want(func(standby, _ bool) error { return iff(!standby, ErrNotStandby) })
	case is(pgconn.ValidateConnectTargetSessionAttrsPreferStandby):
		cfg.ValidateConnect = validatePreferStandby
	default:
		return errors.New("unknown target_session_attrs check")
	}
	return nil
}

// validatePreferStandby marks a prefer-standby configuration: Connect tries
// the hosts for a standby first, then, if none is, for any server, as libpq
// does. (pgconn's NotPreferredError cannot be built outside pgconn.)
func validatePreferStandby(ctx context.Context, conn *pgconn.PgConn) error {
	return want(func(standby, _ bool) error { return iff(!standby, ErrNotStandby) })(ctx, conn)
}

func isPreferStandby(cfg *pgconn.Config) bool {
	return cfg.ValidateConnect != nil &&
		reflect.ValueOf(cfg.ValidateConnect).Pointer() == reflect.ValueOf(validatePreferStandby).Pointer()
}

func iff(cond bool, err error) error {
	if cond {
		return err
	}
	return nil
}

// want reads in_hot_standby and default_transaction_read_only (GUC_REPORT
// since PostgreSQL 14, sent before ReadyForQuery) and applies check.
func want(check func(standby, readOnly bool) error) pgconn.ValidateConnectFunc {
	return func(_ context.Context, conn *pgconn.PgConn) error {
		hs, ro := conn.ParameterStatus("in_hot_standby"), conn.ParameterStatus("default_transaction_read_only")
		if hs == "" || ro == "" {
			return fmt.Errorf("server %s reported no in_hot_standby/default_transaction_read_only (older than PostgreSQL 14): target_session_attrs cannot be checked", conn.ParameterStatus("server_version"))
		}
		return check(hs == "on", ro == "on")
	}
}
