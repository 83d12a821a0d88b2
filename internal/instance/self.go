package instance

import (
	"net"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg-standby/pg-standby/internal/pgconf"
)

// Port is the port the instance's postgres will listen on: its port
// setting, or PostgreSQL's default.
func Port(conf *pgconf.Config) int {
	if s, ok := conf.Get("port"); ok {
		if n, err := strconv.Atoi(s.Value); err == nil {
			return n
		}
	}
	return 5432
}

// PointsAtItself reports whether a connection would reach this machine on
// the instance's own port (a Unix socket or a loopback address): the seed's
// trap of an instance that replicates from itself.
func PointsAtItself(cfg *pgconn.Config, port int) bool {
	if int(cfg.Port) != port {
		return false
	}
	h := cfg.Host
	if strings.HasPrefix(h, "/") || h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
