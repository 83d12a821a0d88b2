package backup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pg-standby/pg-standby/internal/basebackup"
	"github.com/pg-standby/pg-standby/internal/incremental"
	"github.com/pg-standby/pg-standby/internal/instance"
	"github.com/pg-standby/pg-standby/internal/pgconf"
	"github.com/pg-standby/pg-standby/internal/progress"
	"github.com/pg-standby/pg-standby/internal/replconn"
	"github.com/pg-standby/pg-standby/internal/wal"
)

// ErrAlreadyStandby means there was nothing to do: the instance is a
// finished standby (no basebackup.signal).
var ErrAlreadyStandby = errors.New("already a standby: nothing to do")

// Result describes a finished backup.
type Result struct {
	Primary   string
	SystemID  string
	Start     wal.LSN
	End       wal.LSN
	Timeline  uint32
	Files     int
	Bytes     int64
	Written   int64
	Unchanged int64
	Removed   []string
	Kept      []string
}

// runAttempt is Run before redaction.
func runAttempt(ctx context.Context, opt Options) (*Result, error) {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.Progress == nil {
		opt.Progress = progress.NewTracker()
	}
	if opt.SyncWorkers == 0 {
		opt.SyncWorkers = 4
	}
	in := opt.Instance
	if in == nil {
		var err error
		if in, err = instance.New(opt.DataDir, opt.ConfFile); err != nil {
			return nil, &Error{Kind: Refused, Err: err}
		}
	}
	st, err := in.Inspect()
	if err != nil {
		return nil, err
	}
	if st == instance.Standby {
		return nil, ErrAlreadyStandby
	}
	lock, err := in.Lock()
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	// Inspect again under the lock: a worker that just finished removed the signal.
	if st, err := in.Inspect(); err != nil || st == instance.Standby {
		if err == nil {
			err = ErrAlreadyStandby
		}
		return nil, err
	}
	b, err := newAttempt(in, opt)
	if err != nil {
		return nil, err
	}
	before := b.numberAttempt()
	res, err := b.run(ctx)
	if err != nil {
		err = explain(err, replconn.Address(b.connCfg))
		b.recordUnwritten(ctx, before, err)
		return nil, err
	}
	return res, nil
}

// newAttempt reads what the locked instance records and configures.
func newAttempt(in *instance.Instance, opt Options) (*attempt, error) {
	pending, err := readPending(in)
	if err != nil {
		return nil, err
	}
	conf, err := loadOwnConfig(in, pending)
	if err != nil {
		return nil, configErr("read the instance's configuration: %w", err)
	}
	connCfg, err := primaryConninfo(in, conf, opt.Log)
	if err != nil {
		return nil, err
	}
	if err := applySettings(&opt, conf); err != nil {
		return nil, err
	}
	keepPrimary := false
	if s, ok := conf.Get(KeepPrimarySettings); ok {
		if keepPrimary, err = pgconf.ParseBool(s.Value); err != nil {
			return nil, configErr("%s in %s line %d: %w", s.Name, s.File, s.Line, err)
		}
	}
	if opt.ManifestChecksums == "" {
		opt.ManifestChecksums = "CRC32C"
	}
	slot := ""
	if s, ok := conf.Get("primary_slot_name"); ok {
		slot = s.Value
	}
	b := &attempt{opt: opt, in: in, log: opt.Log.With("primary", replconn.Address(connCfg)), connCfg: connCfg, slot: slot, conf: conf, keepPrimary: keepPrimary}
	b.pending = pending
	b.kept = b.pending.Keep
	if !b.pending.Recorded {
		b.kept = keptFiles(in, conf)
	}
	return b, nil
}

// primaryConninfo checks and parses the instance's primary_conninfo.
func primaryConninfo(in *instance.Instance, conf *pgconf.Config, log *slog.Logger) (*pgconn.Config, error) {
	ci, ok := conf.Get("primary_conninfo")
	if !ok || strings.TrimSpace(ci.Value) == "" {
		return nil, configErr("primary_conninfo is not set in %s (or the files it includes): without it libpq's defaults "+
			"would make this instance copy itself; set primary_conninfo = 'host=... user=...' there", in.ConfFile)
	}
	connCfg, notes, err := replconn.ParseConninfoNotes(ci.Value)
	if err != nil {
		return nil, configErr("primary_conninfo in %s line %d is invalid: %w", ci.File, ci.Line, err)
	}
	if err := instance.CheckPassfile(ci.Value, instance.UserHome(), os.Getuid()); err != nil {
		return nil, configErr("primary_conninfo in %s line %d: %w", ci.File, ci.Line, err)
	}
	for _, n := range notes {
		log.Warn(n)
	}
	if instance.PointsAtItself(connCfg, instance.Port(conf)) {
		return nil, configErr("primary_conninfo in %s line %d points at this instance itself (%s, its own port): "+
			"set host and port of the primary there", ci.File, ci.Line, replconn.Address(connCfg))
	}
	return connCfg, nil
}

// attempt is the state of one Run past the refusals.
type attempt struct {
	opt     Options
	in      *instance.Instance
	log     *slog.Logger
	connCfg *pgconn.Config
	slot    string

	kept     []string // data-directory paths of the instance's own configuration
	pending  instance.Pending
	conf     *pgconf.Config
	sys      replconn.System
	major    int // the primary's PostgreSQL major, from identify
	segSize  int64
	fileMode os.FileMode
	dirMode  os.FileMode
	tempSlot string
	// keepPrimary keeps the primary's commands, libraries and paths (KeepPrimarySettings).
	keepPrimary bool
	// otherSystem: the primary is not the cluster earlier attempts copied.
	otherSystem bool

	sourceStandby bool                   // the server was in hot standby when identified (cascading)
	started       *basebackup.Started    // set once BASE_BACKUP reported its start
	primaryHS     map[string]int         // the primary's hot-standby settings
	primaryRS     map[string]string      // the primary's result settings (SHOW)
	settings      replconn.Settings      // what identify read with SHOW
	locales       func() map[string]bool // installedLocales, run beside the copy (nil: at handover)
}

func (b *attempt) run(ctx context.Context) (*Result, error) {
	p := b.opt.Progress
	p.SetPrimary(replconn.Address(b.connCfg))
	p.SetPhase(progress.Connecting)
	b.log.Info("connecting to primary")
	main, err := replconn.Connect(ctx, b.connCfg, b.log)
	if err != nil {
		return nil, b.diagnose(ctx, err, nil)
	}
	defer main.Close(context.Background())
	if len(b.connCfg.Fallbacks) > 0 {
		p.SetPrimary(main.Conn().RemoteAddr().String()) // the host of the list that answered
	}
	res, err := b.runOn(ctx, main)
	return res, b.diagnose(ctx, err, main)
}

// runOn takes the backup from the server main reached; the WAL connection
// goes to the same server, whatever else primary_conninfo lists. It is
// opened, checked and given its slot while the directory's prior state is
// read: both mostly wait, on the server and on the disk.
func (b *attempt) runOn(ctx context.Context, main *pgconn.PgConn) (*Result, error) {
	if err := b.identify(ctx, main); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(b.in.DataDir)
	if err != nil {
		return nil, fmt.Errorf("open data directory: %w", err)
	}
	defer root.Close()
	// Handover checks lc_* values against locale -a: run it meanwhile (a
	// bare copy has no handover).
	if !b.opt.CopyOnly {
		b.locales = lookupLocales(ctx)
		defer b.locales() // no goroutine outlives the attempt
	}
	wal := make(chan error, 1)
	var walConn *pgconn.PgConn
	go func() {
		var err error
		walConn, err = b.openWAL(ctx, main)
		wal <- err
	}()
	pr, perr := b.readPrior(root)
	if err := <-wal; err != nil {
		return nil, err
	}
	defer walConn.Close(context.Background())
	if perr != nil {
		return nil, perr
	}
	return b.copy(ctx, main, walConn, root, pr)
}

// openWAL opens the WAL connection to the server main reached, checks it
// reached the same cluster, and prepares the slot WAL streams from.
func (b *attempt) openWAL(ctx context.Context, main *pgconn.PgConn) (*pgconn.PgConn, error) {
	conn, err := replconn.Connect(ctx, replconn.Pin(b.connCfg, main), b.log)
	if err != nil {
		return nil, err
	}
	if err := b.sameCluster(ctx, conn); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	if err := b.prepareSlot(ctx, conn); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// identify checks the primary can serve us: version, and reads WAL segment
// size and data directory mode.
func (b *attempt) identify(ctx context.Context, conn *pgconn.PgConn) error {
	ver := conn.ParameterStatus("server_version")
	b.major = incremental.ServerMajor(conn)
	if b.major < 15 {
		return configErr("unsupported server version %q on the primary: pg-standby needs PostgreSQL 15 or newer "+
			"(the BASE_BACKUP protocol it speaks); use pg_basebackup of that version instead", ver)
	}
	b.sourceStandby = conn.ParameterStatus("in_hot_standby") == "on"
	sys, err := replconn.IdentifySystem(ctx, conn)
	if err != nil {
		return err
	}
	b.sys = sys
	b.checkCopiedSystem()
	if b.settings, err = replconn.ShowAll(ctx, conn, b.settingNames()); err != nil {
		return err
	}
	segText, err := b.settings.Get("wal_segment_size")
	if err != nil {
		return err
	}
	b.segSize, err = parseSize(segText)
	if err != nil || !wal.ValidSegmentSize(b.segSize) {
		return fmt.Errorf("primary reports an invalid wal_segment_size %q", segText)
	}
	modeText, err := b.settings.Get("data_directory_mode")
	if err != nil {
		return err
	}
	mode, err := strconv.ParseUint(modeText, 8, 32)
	if err != nil {
		return fmt.Errorf("primary reports an invalid data_directory_mode %q", modeText)
	}
	// Group access is the one variation initdb allows (-g): 0750/0640.
	b.dirMode, b.fileMode = 0o700, 0o600
	if mode&0o050 == 0o050 {
		b.dirMode, b.fileMode = 0o750, 0o640
	}
	b.log.Info("primary identified", "system_identifier", sys.SystemID, "timeline", sys.Timeline,
		"server_version", ver, "wal_segment_size", b.segSize)
	b.checkHotStandbySettings()
	b.primaryRS = b.readResultSettings(b.settings)
	// Under Patroni (copy-only) slots and primary_conninfo are Patroni's:
	// the advice would point at pg-standby init, which does not apply.
	if !b.opt.CopyOnly {
		if w := walKeepWarning(b.settings, b.slot, b.conf); w != "" {
			b.log.Warn(w)
		}
	}
	return nil
}

// settingNames are the settings identify reads, all in one round trip:
// its own, the hot-standby and result settings, the WAL-keeping ones and,
// on 17+, those planResume's probe needs.
func (b *attempt) settingNames() []string {
	names := append([]string{"wal_segment_size", "data_directory_mode"}, hotStandbyNames()...)
	names = append(names, walKeepSettings...)
	for _, rs := range resultSettings {
		names = append(names, rs.name)
	}
	if b.major >= incremental.MinMajor {
		names = append(names, incremental.ProbeSettings...)
	}
	return names
}

// conninfoSource names where primary_conninfo is set, for messages.
func (b *attempt) conninfoSource() string {
	if s, ok := b.conf.Get("primary_conninfo"); ok {
		return fmt.Sprintf("primary_conninfo in %s line %d", s.File, s.Line)
	}
	return "primary_conninfo"
}

// checkCopiedSystem notes a primary that is not the cluster earlier
// attempts copied from (basebackup.signal): their files are no base for
// changed blocks, so this attempt is a full backup over the directory.
func (b *attempt) checkCopiedSystem() {
	if !b.pending.Written || b.pending.SystemID == "" || b.pending.SystemID == b.sys.SystemID {
		return
	}
	b.otherSystem = true
	b.log.Warn(fmt.Sprintf("the primary is system %s, but earlier attempts copied system %s into this directory: %s now "+
		"reaches another cluster (changed, or the primary was re-created); taking a full backup of this one over the "+
		"directory, every file received again. If this is not the primary to follow, stop and fix primary_conninfo",
		b.sys.SystemID, b.pending.SystemID, b.conninfoSource()), "system_identifier", b.sys.SystemID, "copied_system_identifier", b.pending.SystemID)
}

// sameCluster checks that the WAL connection reached the cluster the backup
// connection identified: an address in front of several clusters (a proxy,
// a virtual IP) would mix one cluster's WAL into another's backup, and a
// retry would only do it again.
func (b *attempt) sameCluster(ctx context.Context, walConn *pgconn.PgConn) error {
	sys, err := replconn.IdentifySystem(ctx, walConn)
	if err != nil {
		return err
	}
	if sys.SystemID != b.sys.SystemID {
		return configErr("the WAL connection reached system %s and the backup connection system %s, both at %s: %s names an "+
			"address in front of more than one cluster (a proxy or virtual IP?); point it at the primary itself",
			sys.SystemID, b.sys.SystemID, replconn.Address(b.connCfg), b.conninfoSource())
	}
	return nil
}

// checkHotStandbySettings reads the primary's hot-standby settings and
// says, before anything is copied, which ones the copy will raise.
func (b *attempt) checkHotStandbySettings() {
	b.primaryHS = readHotStandby(b.settings)
	for _, n := range hotStandbyNotes(b.conf, b.primaryHS, b.in.DataDir) {
		b.log.Warn(n)
	}
}

// parseSize reads SHOW's "16MB"-style answer.
func parseSize(s string) (int64, error) {
	units := map[string]int64{"B": 1, "kB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if i <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	u, ok := units[s[i:]]
	if err != nil || !ok {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * u, nil
}

// prepareSlot makes sure WAL from the backup's start is kept for us: the
// configured slot (created on request) or a temporary one, created before
// BASE_BACKUP so it reserves WAL from before the backup's checkpoint.
func (b *attempt) prepareSlot(ctx context.Context, conn *pgconn.PgConn) error {
	if b.slot != "" {
		ok, err := replconn.SlotExists(ctx, conn, b.slot)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if !b.opt.CreateSlot {
			return configErr("replication slot %q (primary_slot_name) does not exist on the primary; create it there "+
				"(SELECT pg_create_physical_replication_slot('%s', true)), let pg-standby create it (--create-slot), "+
				"or remove primary_slot_name", b.slot, b.slot)
		}
		b.log.Info("creating replication slot on the primary", "slot", b.slot)
		return replconn.CreateSlot(ctx, conn, b.slot, false)
	}
	b.tempSlot = fmt.Sprintf("pg_standby_%d", os.Getpid())
	return replconn.CreateSlot(ctx, conn, b.tempSlot, true)
}

// resetForAttempt removes what makes a half-written directory dangerous or
// stale, first pg_control so postgres can never start on a mixed directory,
// then the WAL of an earlier attempt.
func resetForAttempt(root *os.Root) error {
	for _, name := range []string{instance.PgControl, instance.PgControlPending, instance.StandbySignal} {
		if err := root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s of an earlier attempt: %w", name, err)
		}
	}
	if err := syncIfExists(root, "global"); err != nil {
		return err
	}
	if err := root.Mkdir("pg_wal", 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create pg_wal: %w", err)
	}
	d, err := root.Open("pg_wal")
	if err != nil {
		return fmt.Errorf("open pg_wal: %w", err)
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("read pg_wal: %w", err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			if err := root.Remove("pg_wal/" + e.Name()); err != nil {
				return fmt.Errorf("remove WAL of an earlier attempt: %w", err)
			}
		}
	}
	return nil
}

func syncIfExists(root *os.Root, dir string) error {
	if _, err := root.Lstat(dir); err != nil {
		return nil
	}
	d, err := root.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// keptFiles lists the data-directory paths of configuration the instance
// keeps from its own copy: the minimal instance's postgresql.conf, pg_hba.conf
// and pg_ident.conf, and every file its configuration includes from inside
// the data directory. postgresql.auto.conf comes from the primary.
func keptFiles(in *instance.Instance, conf *pgconf.Config) []string {
	kept := in.KeptConfig()
	for _, f := range conf.Files() {
		rel, err := filepath.Rel(in.DataDir, f)
		if err != nil || rel == "." || strings.HasPrefix(rel, "../") || rel == ".." || rel == instance.AutoConf {
			continue
		}
		if !slices.Contains(kept, rel) {
			kept = append(kept, rel)
		}
	}
	return kept
}

// loadOwnConfig reads the instance's configuration. Once an attempt has
// written, files in the data directory other than the kept ones may be the
// primary's (its postgresql.auto.conf, say): they are not read, or the
// primary could choose whom the retry copies.
func loadOwnConfig(in *instance.Instance, pending instance.Pending) (*pgconf.Config, error) {
	if !pending.Recorded {
		return pgconf.Load(in.ConfFile, in.DataDir)
	}
	return pgconf.LoadOnly(in.ConfFile, in.DataDir, func(abs string) bool {
		rel, err := filepath.Rel(in.DataDir, abs)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return true // outside the data directory: nothing of the primary's
		}
		return slices.Contains(pending.Keep, rel)
	})
}

func readPending(in *instance.Instance) (instance.Pending, error) {
	root, err := os.OpenRoot(in.DataDir)
	if err != nil {
		return instance.Pending{}, fmt.Errorf("open data directory: %w", err)
	}
	defer root.Close()
	return instance.ReadPending(root)
}

// applySettings takes the backup options the instance stores as pg_standby.*
// settings, for every option the caller left unset.
func applySettings(opt *Options, conf *pgconf.Config) error {
	set := instance.Settings{
		Checkpoint: opt.Checkpoint, MaxRateKB: opt.MaxRateKB, Compression: opt.Compression, CreateSlot: opt.CreateSlot,
		DirectIO: opt.DirectIO, ManifestChecksums: opt.ManifestChecksums, TablespaceMapping: opt.TablespaceMapping,
	}
	if err := set.Fill(conf); err != nil {
		return configErr("%w", err)
	}
	opt.Checkpoint, opt.MaxRateKB, opt.Compression, opt.CreateSlot = set.Checkpoint, set.MaxRateKB, set.Compression, set.CreateSlot
	opt.DirectIO, opt.ManifestChecksums, opt.TablespaceMapping = set.DirectIO, set.ManifestChecksums, set.TablespaceMapping
	if opt.Checkpoint == "" {
		opt.Checkpoint = "fast"
	}
	if _, _, err := instance.SplitCompression(opt.Compression); err != nil {
		return configErr("compression %q: %w", opt.Compression, err)
	}
	return nil
}
