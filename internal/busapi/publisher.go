package busapi

import (
	"context"
	_ "embed"
	"encoding/xml"
	"log/slog"
	"os"
	"os/user"
	"strconv"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
	"github.com/godbus/dbus/v5/prop"

	"github.com/pg-standby/pg-standby/internal/progress"
)

// IntrospectionXML is the interface's introspection document, as shipped in
// packaging/dbus/org.pgstandby.Standby1.Job.xml.
//
//go:embed org.pgstandby.Standby1.Job.xml
var IntrospectionXML string

// Timing of the publisher.
const (
	// progressEvery is the least time between two PropertiesChanged signals
	// that carry only byte counters, less a tenth for ticker jitter.
	progressEvery = time.Second - time.Second/10
	// rateWindow is the sliding window of the Rate property.
	rateWindow = 10 * time.Second
	// firstRetry and maxRetry bound the wait between two connection attempts.
	firstRetry = time.Second
	maxRetry   = 30 * time.Second
	// endWait bounds how long Completed and Close wait for the bus.
	endWait = 2 * time.Second
)

// progressProps change with every report; a signal holding only these is
// rate-limited. Any other change is sent at once, together with them.
var progressProps = map[string]bool{"BytesDone": true, "BytesTotal": true, "Progress": true, "ProgressValid": true, "Rate": true, "ExpectedEndTime": true}

// Config configures a Publisher.
type Config struct {
	// Instance is how the instance was named; DataDir its absolute data
	// directory, which makes the bus name and object path.
	Instance, DataDir string
	// Log receives the few lines the publisher writes (nil: slog.Default()).
	Log *slog.Logger
	// Cancel is called once, in its own goroutine, when an allowed caller
	// calls Cancel().
	Cancel func()
	// LastError, if set, returns the instance's recorded last failure; it is
	// read at start and whenever the phase or attempt changes.
	LastError func() string
	// Address is the bus address; "" means the system bus
	// (DBUS_SYSTEM_BUS_ADDRESS, else /run/dbus/system_bus_socket).
	Address string
}

// Publisher shows one worker on the bus. It implements progress.Sink.
type Publisher struct {
	cfg     Config
	log     *slog.Logger
	name    string
	path    dbus.ObjectPath
	allowed map[uint32]bool
	xml     string

	snaps  chan progress.Snapshot // the latest snapshot not yet applied
	ends   chan end               // the first Completed call
	stop   context.CancelFunc
	ctx    context.Context
	done   chan struct{}
	cancel sync.Once

	mu           sync.Mutex
	props        map[string]dbus.Variant // what Get and GetAll return
	completed    bool
	cancelCalled bool

	// Owned by the loop goroutine.
	lastError string
	last      progress.Snapshot
	samples   []sample
}

type sample struct {
	at    time.Time
	bytes int64
}

// New starts a publisher for one worker. It connects in the background and
// never fails: without a bus it logs once and keeps trying.
func New(cfg Config) *Publisher {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Instance == "" {
		cfg.Instance = cfg.DataDir
	}
	ctx, stop := context.WithCancel(context.Background())
	p := &Publisher{
		cfg: cfg, log: cfg.Log, name: Name(cfg.DataDir), path: Path(cfg.DataDir),
		allowed: allowedUIDs(), xml: objectXML(),
		snaps: make(chan progress.Snapshot, 1), ends: make(chan end, 1),
		ctx: ctx, stop: stop, done: make(chan struct{}),
	}
	p.props = map[string]dbus.Variant{
		"Instance": dbus.MakeVariant(cfg.Instance), "DataDirectory": dbus.MakeVariant(cfg.DataDir),
		"Phase": dbus.MakeVariant(PhaseInspecting), "Attempt": dbus.MakeVariant(uint32(0)),
		"BytesDone": dbus.MakeVariant(uint64(0)), "BytesTotal": dbus.MakeVariant(uint64(0)),
		"Progress": dbus.MakeVariant(0.0), "ProgressValid": dbus.MakeVariant(false),
		"Rate": dbus.MakeVariant(uint64(0)), "StartTime": dbus.MakeVariant(uint64(time.Now().UnixMicro())),
		"ExpectedEndTime": dbus.MakeVariant(uint64(0)), "Primary": dbus.MakeVariant(""),
		"StartLSN": dbus.MakeVariant(""), "EndLSN": dbus.MakeVariant(""),
		"LastError": dbus.MakeVariant(""), "Cancelable": dbus.MakeVariant(true),
		"AttemptKind": dbus.MakeVariant(""), "BytesReused": dbus.MakeVariant(uint64(0)),
	}
	go p.loop()
	return p
}

// allowedUIDs are the callers Cancel() accepts besides the bus policy: root,
// the postgres user and the worker's own user (the data directory's owner).
func allowedUIDs() map[uint32]bool {
	ids := map[uint32]bool{0: true, uint32(os.Geteuid()): true}
	if u, err := user.Lookup("postgres"); err == nil {
		if id, err := strconv.ParseUint(u.Uid, 10, 32); err == nil {
			ids[uint32(id)] = true
		}
	}
	return ids
}

// Name is the bus name the publisher owns while connected.
func (p *Publisher) Name() string { return p.name }

// Report implements progress.Sink. It never blocks: a snapshot the publisher
// has not taken yet is replaced by the newer one.
func (p *Publisher) Report(s progress.Snapshot) {
	for {
		select {
		case p.snaps <- s:
			return
		default:
		}
		select {
		case <-p.snaps:
		default:
		}
	}
}

// Completed publishes the end of the job: the last properties (Phase done,
// failed or cancelled, Cancelable false) and the Completed signal. It waits
// at most a moment for the bus; only the first call counts.
func (p *Publisher) Completed(success bool, message string) {
	e := end{success: success, message: message, sent: make(chan struct{})}
	select {
	case p.ends <- e:
	default:
		return
	}
	select {
	case <-e.sent:
	case <-p.done:
	case <-time.After(endWait):
	}
}

// end is a call of Completed.
type end struct {
	success bool
	message string
	sent    chan struct{}
}

// Close releases the bus name and the connection, waiting at most a moment.
func (p *Publisher) Close() {
	p.stop()
	select {
	case <-p.done:
	case <-time.After(endWait):
	}
}

// objectXML is what the object's Introspect returns: the shipped document
// (without its comments) with the standard interfaces godbus serves added.
func objectXML() string {
	var n introspect.Node
	if err := xml.Unmarshal([]byte(IntrospectionXML), &n); err != nil {
		return IntrospectionXML // cannot happen: TestObjectXML parses the embedded document
	}
	n.Interfaces = append(n.Interfaces, prop.IntrospectData) // NewIntrospectable adds Introspectable and Peer
	return string(introspect.NewIntrospectable(&n))
}
