package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pg-standby/pg-standby/internal/testpg"
)

// lookupPG is the PostgreSQL major BENCH_PG names, as the tests find it
// (testpg.Versions: the host's 15, 17 and 18 from their rootfs), or why it
// cannot run here.
func lookupPG(major int) (testpg.Version, error) {
	if major != 15 && major != 17 && major != 18 {
		return testpg.Version{}, fmt.Errorf("BENCH_PG=%d: the bench runs PostgreSQL 15, 17 or 18", major)
	}
	// testpg selects versions by PGSTANDBY_TEST_PG, read once.
	os.Setenv("PGSTANDBY_TEST_PG", strconv.Itoa(major))
	vs, err := testpg.Versions()
	if err != nil {
		return testpg.Version{}, fmt.Errorf("BENCH_PG=%d: %w", major, err)
	}
	if len(vs) != 1 || vs[0].Major != major {
		return testpg.Version{}, fmt.Errorf("BENCH_PG=%d: testpg found %v", major, vs)
	}
	v := vs[0]
	if v.Available() {
		return v, nil
	}
	switch {
	case major == 15:
		return v, fmt.Errorf("BENCH_PG=15: PostgreSQL 15 not found: no initdb in %s (apt-get install -y postgresql-15, or PG_BINDIR / -bindir naming its programs)", testpg.BinDir())
	case os.Geteuid() != 0:
		return v, fmt.Errorf("BENCH_PG=%d: PostgreSQL %d runs from a rootfs by chroot, which needs root", major, major)
	default:
		root := filepath.Join(testpg.RootfsCache(), "*-pg"+strconv.Itoa(major))
		return v, fmt.Errorf("BENCH_PG=%d: no usable PostgreSQL %d rootfs (%s): build it as root with scripts/pg-rootfs.sh %d (a rootfs without the host's postgres uid must be removed and rebuilt)", major, major, root, major)
	}
}

// scenarios parses BENCH_SCENARIO: contenders, retry, resync, a comma list,
// or all.
func scenarios(list string) ([]string, error) {
	if list == "all" {
		return []string{"contenders", "retry", "resync"}, nil
	}
	var out []string
	for _, n := range strings.Split(list, ",") {
		switch n = strings.TrimSpace(n); n {
		case "contenders", "retry", "resync":
			out = append(out, n)
		default:
			return nil, fmt.Errorf("BENCH_SCENARIO: unknown scenario %q (contenders, retry, resync or all)", n)
		}
	}
	return out, nil
}
