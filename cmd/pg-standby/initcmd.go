package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/unit"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg-standby/pg-standby/internal/backup"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/pgconf"
	"github.com/pg-standby/pg-standby/internal/replconn"
)

func initCmd(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	var spec instance.Spec
	spec.TablespaceMapping = mappings{}
	fs.StringVar(&spec.PrimaryConninfo, "primary-conninfo", "", "libpq connection string of the primary, e.g. 'host=db1 user=replicator': required for a new instance; on an existing minimal instance init changes only the settings of the options given")
	fs.StringVar(&spec.SlotName, "slot", "", "replication slot on the primary (primary_slot_name)")
	fs.BoolVar(&spec.CreateSlot, "create-slot", false, "create the slot on the primary when the backup starts")
	fs.StringVar(&spec.Checkpoint, "checkpoint", "", "checkpoint mode on the primary: fast (default) or spread")
	fs.Int64Var(&spec.MaxRateKB, "max-rate", 0, "limit the primary's send rate in kB/s (32..1048576)")
	fs.Var(mappings(spec.TablespaceMapping), "tablespace-mapping", "put the primary's tablespace at OLD at NEW here (repeatable)")
	fs.StringVar(&spec.Compression, "compress", "", "server-side compression METHOD[:DETAIL]: gzip, lz4 or zstd (e.g. zstd:level=3); for slow links")
	fs.StringVar(&spec.DirectIO, "direct-io", "", "on (default): write the copy with O_DIRECT; off: through the page cache")
	fs.IntVar(&spec.Port, "port", 0, "the standby's port (default: next free cluster port for Debian clusters)")
	connFile := fs.String("primary-conninfo-file", "", "read the primary's connection string from FILE (- for standard input): unlike --primary-conninfo, not visible in ps")
	pgdata := fs.String("pgdata", "", "make the instance in this data directory (instead of INSTANCE, or as a Debian cluster's data directory)")
	check := fs.Bool("check", false, "connect to the primary first and check it can serve a backup")
	if err := parseInterspersed(fs, args); err != nil {
		return parseExit(err)
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "pg-standby init: "+format+"\n", a...)
		return code
	}
	in, err := resolveInitInstance(fs, *pgdata)
	if err != nil {
		var refused *instance.RefusedError
		if errors.As(err, &refused) {
			return fail(exitRefused, "%v", err)
		}
		return fail(exitUsage, "%v", err)
	}
	existing, err := instance.Existing(in)
	if err != nil {
		var refused *instance.RefusedError
		if errors.As(err, &refused) {
			return fail(exitRefused, "%v", err)
		}
		return fail(exitConfig, "%v", err)
	}
	opts := changedOptions(fs)
	if existing && len(opts) == 0 && !*check {
		fmt.Printf("nothing to change: %s is a minimal instance already; name the settings to change (e.g. --max-rate 2048)\n", in.ConfFile)
		return exitOK
	}
	if err := readConninfo(&spec, *connFile); err != nil {
		return fail(exitUsage, "%v", err)
	}
	given := spec.PrimaryConninfo != ""
	if !given && existing {
		spec.PrimaryConninfo = storedConninfo(in) // for the checks below only
	}
	if spec.PrimaryConninfo == "" && existing && *check {
		return fail(exitUsage, "--check needs the primary's connection string and none is readable in %s (a link is not followed); give --primary-conninfo or --primary-conninfo-file", in.ConfFile)
	}
	if spec.PrimaryConninfo == "" && !existing {
		return fail(exitUsage, "--primary-conninfo (or --primary-conninfo-file) is required to make a new instance (%s is none yet): without it libpq's defaults would make the instance copy itself", in.DataDir)
	}
	if given && *connFile == "" && instance.HasPassword(spec.PrimaryConninfo) {
		fmt.Fprintln(os.Stderr, "pg-standby init: warning: the password on the command line is visible to every local user (ps) while init runs; "+
			"use --primary-conninfo-file FILE or - (standard input), or ~postgres/.pgpass")
	}
	// The worker runs as postgres and finds passwords in its ~/.pgpass: so
	// does the --check of an init run as root.
	home, uid := instance.UserHome(), os.Geteuid()
	if os.Geteuid() == 0 {
		if u, err := user.Lookup("postgres"); err == nil {
			home = u.HomeDir
			uid, _ = strconv.Atoi(u.Uid)
			if os.Getenv("PGPASSFILE") == "" {
				os.Setenv("PGPASSFILE", filepath.Join(u.HomeDir, ".pgpass"))
			}
		}
	}
	var cfg *pgconn.Config // nil: an existing instance's, not readable
	if spec.PrimaryConninfo != "" {
		if err := instance.CheckPassfile(spec.PrimaryConninfo, home, uid); err != nil {
			return fail(exitConfig, "%v", err)
		}
		if cfg, err = replconn.ParseConninfo(spec.PrimaryConninfo); err != nil {
			return fail(exitConfig, "--primary-conninfo is invalid: %v", err)
		}
	}
	if err := checkSettings(spec); err != nil {
		return fail(exitUsage, "%v", err)
	}
	if in.Debian != nil && spec.Port == 0 {
		spec.Port = instance.NextPort(in)
	}
	port := spec.Port
	if port == 0 && existing {
		port = storedPort(in)
	}
	if port == 0 {
		port = 5432
	}
	if cfg != nil && instance.PointsAtItself(cfg, port) {
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
	if existing {
		return updateInstance(in, spec, opts, given)
	}
	where, err := instance.Create(in, spec)
	if err != nil {
		return fail(exitCode(&backup.Error{Kind: backup.KindOf(err), Err: err}), "%v", err)
	}
	unitName := in.Name
	if in.Debian == nil {
		unitName = unit.UnitNamePathEscape(in.DataDir)
	}
	fmt.Printf("minimal instance ready: data %s, configuration %s\n", in.DataDir, in.ConfFile)
	warnExposed(in)
	if instance.HasPassword(spec.PrimaryConninfo) {
		fmt.Printf("the connection string holds a password: it is in %s, mode 0600, readable by its owner only\n", where)
	}
	fmt.Printf("take the backup and start the standby with:  systemctl start pg-standby@%s\n", unitName)
	return exitOK
}

// checkSettings checks the backup options init stores, by the rules run
// applies to them (instance.Settings); each is a usage error.
func checkSettings(spec instance.Spec) error {
	if spec.Checkpoint != "" {
		if err := instance.CheckCheckpoint(spec.Checkpoint); err != nil {
			return fmt.Errorf("--checkpoint %q: %w", spec.Checkpoint, err)
		}
	}
	if spec.DirectIO != "" {
		if _, err := pgconf.ParseBool(spec.DirectIO); err != nil {
			return fmt.Errorf("--direct-io: %w", err)
		}
	}
	if spec.MaxRateKB != 0 {
		if err := instance.CheckMaxRate(spec.MaxRateKB); err != nil {
			return fmt.Errorf("--max-rate %d: %w", spec.MaxRateKB, err)
		}
	}
	if _, _, err := instance.SplitCompression(spec.Compression); err != nil {
		return fmt.Errorf("--compress %q: %w", spec.Compression, err)
	}
	return nil
}

// updateInstance changes only the settings named on the command line of an
// existing minimal instance, and says what it changed.
func updateInstance(in *instance.Instance, spec instance.Spec, opts []string, conninfo bool) int {
	changes, err := instance.Update(in, spec, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pg-standby init: %v\n", err)
		return exitCode(&backup.Error{Kind: backup.KindOf(err), Err: err})
	}
	if len(changes) == 0 {
		fmt.Printf("nothing to change: %s is a minimal instance already; name the settings to change (e.g. --max-rate 2048)\n", in.ConfFile)
	}
	for _, c := range changes {
		fmt.Println(c)
		if c.Secret && !c.Same && conninfo && instance.HasPassword(spec.PrimaryConninfo) {
			fmt.Printf("the connection string holds a password: it is in %s, mode 0600, readable by its owner only\n", c.File)
		}
	}
	warnExposed(in)
	return exitOK
}

// changedOptions lists the options given that init stores as settings.
func changedOptions(fs *flag.FlagSet) []string {
	var opts []string
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "pgdata" && f.Name != "check" {
			opts = append(opts, f.Name)
		}
	})
	return opts
}

// storedConninfo is the instance's winning primary_conninfo ("" if none).
func storedConninfo(in *instance.Instance) string {
	conf, err := instance.LoadConfig(in)
	if err != nil {
		return ""
	}
	s, _ := conf.Get("primary_conninfo")
	return s.Value
}

// storedPort is the instance's port setting, PostgreSQL's 5432 if none.
func storedPort(in *instance.Instance) int {
	if conf, err := instance.LoadConfig(in); err == nil {
		if s, ok := conf.Get("port"); ok {
			if n, err := strconv.Atoi(s.Value); err == nil {
				return n
			}
		}
	}
	return 5432
}

// warnExposed warns of a password others can read: the winning
// primary_conninfo may be an admin's, in another file.
func warnExposed(in *instance.Instance) {
	if conf, err := pgconf.Load(in.ConfFile, in.DataDir); err == nil {
		if s, ok := conf.Get("primary_conninfo"); ok {
			if w := instance.ExposedSecret(s.Value, s.File); w != "" {
				fmt.Fprintln(os.Stderr, "pg-standby init: warning:", w)
			}
		}
	}
}

// resolveInitInstance resolves init's INSTANCE or --pgdata (both: a Debian cluster
// whose data directory the admin names). A path given here is the admin's
// own word, so its symlinks are resolved now, once; everything init then
// writes is reached without following any.
func resolveInitInstance(fs *flag.FlagSet, pgdata string) (*instance.Instance, error) {
	if pgdata != "" {
		pgdata = realPath(pgdata)
	}
	switch {
	case fs.NArg() == 1 && (pgdata == "" || !filepath.IsAbs(fs.Arg(0))):
		in, err := instance.ResolveInit(fs.Arg(0), pgdata)
		if err == nil && in.Debian == nil {
			in.DataDir = realPath(in.DataDir)
			in.ConfFile = filepath.Join(in.DataDir, "postgresql.conf")
		}
		return in, err
	case fs.NArg() == 0 && pgdata != "":
		return instance.New(pgdata, "")
	case fs.NArg() > 1 || pgdata != "":
		return nil, errors.New("give INSTANCE or --pgdata, not both (except a Debian cluster name with its --pgdata)")
	}
	return nil, errors.New("want exactly one INSTANCE (or --pgdata DIR)")
}

// realPath resolves the symlinks of p's existing part.
func realPath(p string) string {
	p, _ = filepath.Abs(p)
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	if parent := filepath.Dir(p); parent != p {
		return filepath.Join(realPath(parent), filepath.Base(p))
	}
	return p
}

// readConninfo takes the connection string from --primary-conninfo-file
// (a file or "-", standard input), bounded; a final newline is dropped.
func readConninfo(spec *instance.Spec, file string) error {
	if file == "" {
		return nil
	}
	if spec.PrimaryConninfo != "" {
		return errors.New("give --primary-conninfo or --primary-conninfo-file, not both")
	}
	r := io.Reader(os.Stdin)
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return fmt.Errorf("--primary-conninfo-file: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, 64<<10+1))
	if err != nil {
		return fmt.Errorf("--primary-conninfo-file %s: %w", file, err)
	}
	if len(b) > 64<<10 {
		return fmt.Errorf("--primary-conninfo-file %s: longer than 64 kB; want one connection string", file)
	}
	spec.PrimaryConninfo = strings.TrimRight(string(b), "\r\n")
	return nil
}
