package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/decompress"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/pgconf"
	"github.com/pg-standby/pg-standby/internal/replconn"
)

func initCmd(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	var spec instance.Spec
	spec.TablespaceMapping = mappings{}
	fs.StringVar(&spec.PrimaryConninfo, "primary-conninfo", "", "libpq connection string of the primary (required), e.g. 'host=db1 user=replicator'")
	fs.StringVar(&spec.SlotName, "slot", "", "replication slot on the primary (primary_slot_name)")
	fs.BoolVar(&spec.CreateSlot, "create-slot", false, "create the slot on the primary when the backup starts")
	fs.StringVar(&spec.Checkpoint, "checkpoint", "", "checkpoint mode on the primary: fast (default) or spread")
	fs.Int64Var(&spec.MaxRateKB, "max-rate", 0, "limit the primary's send rate in kB/s (32..1048576)")
	fs.Var(mappings(spec.TablespaceMapping), "tablespace-mapping", "put the primary's tablespace at OLD at NEW here (repeatable)")
	fs.StringVar(&spec.Compression, "compress", "", "server-side compression METHOD[:DETAIL]: gzip, lz4 or zstd (e.g. zstd:level=3); for slow links")
	fs.StringVar(&spec.DirectIO, "direct-io", "", "on (default): write the copy with O_DIRECT; off: through the page cache")
	fs.IntVar(&spec.Port, "port", 0, "the standby's port (default: next free cluster port for Debian clusters)")
	pgdata := fs.String("pgdata", "", "make the instance in this data directory (instead of INSTANCE)")
	check := fs.Bool("check", false, "connect to the primary first and check it can serve a backup")
	if err := parseInterspersed(fs, args); err != nil {
		return parseExit(err)
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "pg-standby init: "+format+"\n", a...)
		return code
	}
	in, err := instanceArg(fs, *pgdata, "", true)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	if spec.PrimaryConninfo == "" {
		return fail(exitUsage, "--primary-conninfo is required: without it libpq's defaults would make the instance copy itself")
	}
	// The worker runs as postgres and finds passwords in its ~/.pgpass: so
	// does the --check of an init run as root.
	if os.Geteuid() == 0 && os.Getenv("PGPASSFILE") == "" {
		if u, err := user.Lookup("postgres"); err == nil {
			os.Setenv("PGPASSFILE", filepath.Join(u.HomeDir, ".pgpass"))
		}
	}
	cfg, err := replconn.ParseConninfo(spec.PrimaryConninfo)
	if err != nil {
		return fail(exitConfig, "--primary-conninfo is invalid: %v", err)
	}
	if spec.Checkpoint != "" && spec.Checkpoint != "fast" && spec.Checkpoint != "spread" {
		return fail(exitUsage, "--checkpoint %q: want fast or spread", spec.Checkpoint)
	}
	if spec.DirectIO != "" {
		if _, err := pgconf.ParseBool(spec.DirectIO); err != nil {
			return fail(exitUsage, "--direct-io: %v", err)
		}
	}
	if spec.MaxRateKB != 0 && (spec.MaxRateKB < 32 || spec.MaxRateKB > 1048576) {
		return fail(exitUsage, "--max-rate %d: want 32 to 1048576 kB/s", spec.MaxRateKB)
	}
	if method, _, _ := strings.Cut(spec.Compression, ":"); method != "" && method != "none" {
		if _, ok := decompress.Methods[method]; !ok {
			return fail(exitUsage, "--compress %q: want gzip, lz4 or zstd, optionally with :DETAIL (e.g. zstd:level=3)", spec.Compression)
		}
	}
	if in.Debian != nil && spec.Port == 0 {
		spec.Port = instance.NextPort(in)
	}
	port := spec.Port
	if port == 0 {
		port = 5432
	}
	if instance.PointsAtItself(cfg, port) {
		return fail(exitConfig, "--primary-conninfo points at the new instance itself (%s is its own port); name the primary's host and port", replconn.Address(cfg))
	}
	if *check {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		conn, err := replconn.Connect(cctx, cfg, nopLogger())
		if err == nil {
			_, err = replconn.IdentifySystem(cctx, conn)
			warnPreflight(cctx, conn, spec.SlotName, in.DataDir)
			conn.Close(context.Background())
		}
		if err != nil {
			return fail(exitCode(err), "check of the primary failed: %v", err)
		}
	}
	if err := instance.Create(in, spec); err != nil {
		return fail(exitCode(&backup.Error{Kind: backup.KindOf(err), Err: err}), "%v", err)
	}
	unitName := in.Name
	if in.Debian == nil {
		unitName = unit.UnitNamePathEscape(in.DataDir)
	}
	fmt.Printf("minimal instance ready: data %s, configuration %s\n", in.DataDir, in.ConfFile)
	fmt.Printf("take the backup and start the standby with:  systemctl start pg-standby@%s\n", unitName)
	return exitOK
}
