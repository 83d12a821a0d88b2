package busapi

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"

	"github.com/pg-standby/pg-standby/internal/progress"
	"github.com/pg-standby/pg-standby/internal/testbus"
)

// policyBus has the system bus' default policy and ours; allowAllBus lets
// anyone do anything, to test the worker's own caller check.
var policyBus, allowAllBus *testbus.Bus

func TestMain(m *testing.M) {
	var err error
	if policyBus, err = testbus.Start(testbus.Options{Policies: []string{"../../packaging/dbus/pg-standby.conf"}}); err != nil {
		fmt.Fprintln(os.Stderr, "busapi tests:", err)
		os.Exit(1)
	}
	if allowAllBus, err = testbus.Start(testbus.Options{AllowAll: true}); err != nil {
		policyBus.Stop()
		fmt.Fprintln(os.Stderr, "busapi tests:", err)
		os.Exit(1)
	}
	os.Setenv("DBUS_SYSTEM_BUS_ADDRESS", policyBus.Address)
	code := m.Run()
	policyBus.Stop()
	allowAllBus.Stop()
	os.Exit(code)
}

func TestLabel(t *testing.T) {
	for in, want := range map[string]string{
		"/var/lib/postgresql/15/main": "_2fvar_2flib_2fpostgresql_2f15_2fmain",
		"15-main":                     "_315_2dmain",
		"":                            "_",
		"abc_d":                       "abc_5fd",
		"/srv/pg\u00e9":               "_2fsrv_2fpg_c3_a9",
	} {
		if got := Label(in); got != want {
			t.Errorf("Label(%q) = %q, want %q", in, got, want)
		}
	}
	long := "/" + strings.Repeat("x", 300)
	if n := Name(long); len(n) > 255 || !strings.HasPrefix(n, NamePrefix+".h") {
		t.Errorf("Name of a %d-byte path: %q (%d bytes), want a hashed label within 255 bytes", len(long), n, len(n))
	}
	if Name(long) == Name(long+"y") {
		t.Errorf("two long paths share the name %s", Name(long))
	}
}

// TestObjectXML: the object serves the shipped interface, every property
// and method of it, and the standard interfaces.
func TestObjectXML(t *testing.T) {
	var shipped, served introspect.Node
	if err := xml.Unmarshal([]byte(IntrospectionXML), &shipped); err != nil {
		t.Fatalf("embedded document: %v", err)
	}
	if err := xml.Unmarshal([]byte(objectXML()), &served); err != nil {
		t.Fatalf("served document: %v", err)
	}
	names := map[string]introspect.Interface{}
	for _, i := range served.Interfaces {
		names[i.Name] = i
	}
	for _, want := range []string{Interface, "org.freedesktop.DBus.Properties", "org.freedesktop.DBus.Introspectable", "org.freedesktop.DBus.Peer"} {
		if _, ok := names[want]; !ok {
			t.Errorf("served document has no interface %s", want)
		}
	}
	if len(shipped.Interfaces) != 1 || !reflect.DeepEqual(names[Interface], shipped.Interfaces[0]) {
		t.Errorf("served %s differs from the shipped one", Interface)
	}
	if job := names[Interface]; len(job.Properties) != 18 || len(job.Methods) != 1 || len(job.Signals) != 1 {
		t.Errorf("served %s: %d properties, %d methods, %d signals; want 18, 1, 1", Interface, len(job.Properties), len(job.Methods), len(job.Signals))
	}
}

// TestShippedXML: packaging/dbus ships what the object serves.
func TestShippedXML(t *testing.T) {
	shipped, err := os.ReadFile("../../packaging/dbus/org.pgstandby.Standby1.Job.xml")
	if err != nil {
		t.Fatal(err)
	}
	if string(shipped) != IntrospectionXML {
		t.Error("packaging/dbus/org.pgstandby.Standby1.Job.xml differs from internal/busapi/org.pgstandby.Standby1.Job.xml")
	}
}

// logBuffer is a concurrency-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newPublisher(t *testing.T, dataDir, address string) (*Publisher, *logBuffer, *atomic.Int32) {
	t.Helper()
	if err := testbus.Guard(); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	var cancels atomic.Int32
	p := New(Config{
		Instance: "test", DataDir: dataDir, Address: address,
		Log:    slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Cancel: func() { cancels.Add(1) },
	})
	t.Cleanup(p.Close)
	return p, logs, &cancels
}

func connect(t *testing.T, address string) *dbus.Conn {
	t.Helper()
	c, err := dbus.Connect(address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func waitOwned(t *testing.T, c *dbus.Conn, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var has bool
		if err := c.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, name).Store(&has); err != nil {
			t.Fatal(err)
		}
		if has {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has no owner after 10s", name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// busctl runs busctl on the bus as user ("" for the current one).
func busctl(t *testing.T, address, user string, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("busctl"); err != nil {
		t.Skip("busctl not installed (Debian package systemd)")
	}
	cmd := exec.Command("busctl", append([]string{"--address=" + address}, args...)...)
	if user != "" {
		if os.Geteuid() != 0 {
			t.Skipf("running busctl as %s needs root", user)
		}
		uid, gid, err := testbus.User(user)
		if err != nil {
			t.Skip(err)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func snap(phase progress.Phase, attempt, streamed, total int64, at time.Time) progress.Snapshot {
	return progress.Snapshot{Phase: phase, Attempt: attempt, Streamed: streamed, Total: total, At: at,
		Elapsed: at.Sub(time.Unix(1700000000, 0)), Primary: "db1:5432", StartLSN: 0x1_0000_0028}
}

// TestPublish: the object, its properties, batched PropertiesChanged and
// Completed, as a client sees them.
func TestPublish(t *testing.T) {
	dir := "/srv/pg/publish"
	p, _, _ := newPublisher(t, dir, "")
	c := connect(t, policyBus.Address)
	sigs := make(chan *dbus.Signal, 100)
	c.Signal(sigs)
	if err := c.AddMatchSignal(dbus.WithMatchObjectPath(Path(dir))); err != nil {
		t.Fatal(err)
	}
	waitOwned(t, c, Name(dir))

	out, err := busctl(t, policyBus.Address, "", "introspect", Name(dir), string(Path(dir)))
	if err != nil {
		t.Fatalf("busctl introspect: %v\n%s", err, out)
	}
	for _, want := range []string{Interface, ".Cancel", ".Completed", ".BytesDone", "org.freedesktop.DBus.Properties"} {
		if !strings.Contains(out, want) {
			t.Errorf("busctl introspect: no %q in\n%s", want, out)
		}
	}

	t0 := time.Now()
	p.Report(snap(progress.Connecting, 0, 0, 0, t0))
	p.Report(snap(progress.Copying, 1, 0, 1000, t0.Add(time.Second)))
	first := recvChanged(t, sigs)
	// Reports are applied one by one or replaced by the newest: either way
	// the phase change goes out at once.
	if v, ok := first["Phase"]; !ok || (v.Value() != PhaseCopying && v.Value() != PhaseConnecting) {
		t.Errorf("first PropertiesChanged %v, want Phase", first)
	}
	// A report that moves only bytes right after is held back, then sent
	// alone by the publisher's tick: one signal, only the changed properties.
	for first["Phase"].Value() != PhaseCopying {
		first = recvChanged(t, sigs)
	}
	p.Report(snap(progress.Copying, 1, 500, 1000, t0.Add(2*time.Second)))
	second := recvChanged(t, sigs)
	if _, ok := second["Phase"]; ok {
		t.Errorf("second PropertiesChanged %v repeats Phase, which did not change", second)
	}
	if v := second["BytesDone"].Value(); v != uint64(500) {
		t.Errorf("BytesDone in %v = %v, want 500", second, v)
	}
	if _, ok := second["Primary"]; ok {
		t.Errorf("second PropertiesChanged %v repeats Primary", second)
	}

	props := getAll(t, c, dir)
	for k, want := range map[string]any{
		"Instance": "test", "DataDirectory": dir, "Phase": PhaseCopying, "Attempt": uint32(1), "BytesDone": uint64(500),
		"BytesTotal": uint64(1000), "Progress": 0.5, "ProgressValid": true, "Rate": uint64(500),
		"Primary": "db1:5432", "StartLSN": "1/28", "EndLSN": "", "Cancelable": true,
	} {
		if got := props[k].Value(); got != want {
			t.Errorf("property %s = %#v, want %#v", k, got, want)
		}
	}
	if end := props["ExpectedEndTime"].Value().(uint64); end != uint64(t0.Add(3*time.Second).UnixMicro()) {
		t.Errorf("ExpectedEndTime = %d, want %d (500 bytes left at 500 B/s)", end, t0.Add(3*time.Second).UnixMicro())
	}
	// Anyone may read.
	if out, err := busctl(t, policyBus.Address, "nobody", "get-property", Name(dir), string(Path(dir)), Interface, "Phase"); err != nil || !strings.Contains(out, PhaseCopying) {
		t.Errorf("get-property as nobody: %v\n%s", err, out)
	}

	p.Completed(true, "standby ready")
	var done bool
	for deadline := time.After(5 * time.Second); !done; {
		select {
		case s := <-sigs:
			if s.Name == Interface+".Completed" {
				if len(s.Body) != 2 || s.Body[0] != true || s.Body[1] != "standby ready" {
					t.Errorf("Completed%v, want (true, standby ready)", s.Body)
				}
				done = true
			}
		case <-deadline:
			t.Fatal("no Completed signal")
		}
	}
	props = getAll(t, c, dir)
	if props["Phase"].Value() != PhaseDone || props["Cancelable"].Value() != false {
		t.Errorf("after Completed: Phase %v Cancelable %v, want done false", props["Phase"], props["Cancelable"])
	}
	p.Close()
	var has bool
	c.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, Name(dir)).Store(&has)
	if has {
		t.Errorf("%s still owned after Close", Name(dir))
	}
}

// TestPublishAttemptKind: a resuming attempt's kind and the bytes it kept
// are what busctl reads (issue 15: progress says what kind of attempt runs).
func TestPublishAttemptKind(t *testing.T) {
	dir := "/srv/pg/resuming"
	p, _, _ := newPublisher(t, dir, "")
	c := connect(t, policyBus.Address)
	waitOwned(t, c, Name(dir))
	kind := "resuming: 412 of 980 files kept, changed blocks only"
	s := snap(progress.Copying, 2, 1000, 5000, time.Now())
	s.Kind, s.Reused = kind, 3<<20
	p.Report(s)
	for deadline := time.Now().Add(5 * time.Second); getAll(t, c, dir)["AttemptKind"].Value() != kind; {
		if time.Now().After(deadline) {
			t.Fatalf("AttemptKind never became %q: %v", kind, getAll(t, c, dir))
		}
		time.Sleep(10 * time.Millisecond)
	}
	for prop, want := range map[string]string{"AttemptKind": `s "` + kind + `"`, "BytesReused": "t 3145728"} {
		out, err := busctl(t, policyBus.Address, "nobody", "get-property", Name(dir), string(Path(dir)), Interface, prop)
		if err != nil || strings.TrimSpace(out) != want {
			t.Errorf("busctl get-property %s: %v %q, want %q", prop, err, out, want)
		}
	}
}

func recvChanged(t *testing.T, sigs chan *dbus.Signal) map[string]dbus.Variant {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case s := <-sigs:
			if s.Name != "org.freedesktop.DBus.Properties.PropertiesChanged" {
				continue
			}
			if s.Body[0] != Interface {
				t.Errorf("PropertiesChanged for %v, want %s", s.Body[0], Interface)
			}
			return s.Body[1].(map[string]dbus.Variant)
		case <-deadline:
			t.Fatal("no PropertiesChanged within 5s")
		}
	}
}

func getAll(t *testing.T, c *dbus.Conn, dir string) map[string]dbus.Variant {
	t.Helper()
	var props map[string]dbus.Variant
	if err := c.Object(Name(dir), Path(dir)).Call("org.freedesktop.DBus.Properties.GetAll", 0, Interface).Store(&props); err != nil {
		t.Fatal(err)
	}
	return props
}

// TestCancelPolicy: with the shipped policy, nobody may neither cancel nor
// own a name; root may cancel, once, and not after Completed.
func TestCancelPolicy(t *testing.T) {
	dir := "/srv/pg/cancel"
	p, _, cancels := newPublisher(t, dir, "")
	c := connect(t, policyBus.Address)
	waitOwned(t, c, Name(dir))
	args := []string{"call", Name(dir), string(Path(dir)), Interface, "Cancel"}
	out, err := busctl(t, policyBus.Address, "nobody", args...)
	if err == nil || !strings.Contains(out, "denied") && !strings.Contains(out, "Access") {
		t.Errorf("Cancel as nobody: err %v, output %q; want access denied", err, out)
	}
	out, err = busctl(t, policyBus.Address, "nobody", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "RequestName", "su", NamePrefix+".x", "4")
	if err == nil {
		t.Errorf("RequestName %s.x as nobody: allowed (%s), want denied", NamePrefix, out)
	}
	// Cancel decides before it replies: the refusal busctl got means the
	// decision is made, so the flag it sets is the thing to look at.
	p.mu.Lock()
	called := p.cancelCalled
	p.mu.Unlock()
	if called || cancels.Load() != 0 {
		t.Fatalf("after nobody's calls: Cancel accepted %v, cancel func called %d times; want neither", called, cancels.Load())
	}
	for i := 0; i < 2; i++ {
		if out, err := busctl(t, policyBus.Address, "", args...); err != nil {
			t.Fatalf("Cancel as root: %v\n%s", err, out)
		}
	}
	waitFor(t, func() bool { return cancels.Load() == 1 })
	p.Completed(false, "stopped")
	if props := getAll(t, c, dir); props["Phase"].Value() != PhaseCancelled || props["LastError"].Value() != "stopped" {
		t.Errorf("after a cancel: Phase %v LastError %v, want cancelled, stopped", props["Phase"], props["LastError"])
	}
	if out, err := busctl(t, policyBus.Address, "", args...); err == nil || !strings.Contains(out, "completed") {
		t.Errorf("Cancel after Completed: %v %s, want NotCancelable", err, out)
	}
	if n := cancels.Load(); n != 1 {
		t.Errorf("cancel func called %d times, want 1", n)
	}
}

// TestCancelServerCheck: behind a bus that allows everything, the worker
// still refuses a caller who is neither root nor postgres.
func TestCancelServerCheck(t *testing.T) {
	dir := "/srv/pg/servercheck"
	_, logs, cancels := newPublisher(t, dir, allowAllBus.Address)
	c := connect(t, allowAllBus.Address)
	waitOwned(t, c, Name(dir))
	out, err := busctl(t, allowAllBus.Address, "nobody", "call", Name(dir), string(Path(dir)), Interface, "Cancel")
	// busctl shows the error name's meaning ("Access denied"); the log
	// below tells that the worker, not the bus, refused.
	if err == nil || !strings.Contains(out, "Access denied") {
		t.Errorf("Cancel as nobody: err %v, output %q; want access denied", err, out)
	}
	if n := cancels.Load(); n != 0 {
		t.Errorf("cancel func called %d times, want 0", n)
	}
	if !strings.Contains(logs.String(), "refused") {
		t.Errorf("no log of the refusal:\n%s", logs)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
	}
}

// TestBusRestart: a bus that goes away and comes back is logged once and
// the name is owned again, with the current properties.
func TestBusRestart(t *testing.T) {
	bus, err := testbus.Start(testbus.Options{Policies: []string{"../../packaging/dbus/pg-standby.conf"}})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Stop()
	dir := "/srv/pg/restart"
	p, logs, _ := newPublisher(t, dir, bus.Address)
	c, err := dbus.Connect(bus.Address)
	if err != nil {
		t.Fatal(err)
	}
	waitOwned(t, c, Name(dir))
	c.Close()
	if err := bus.Restart(1500 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	p.Report(snap(progress.Copying, 3, 42, 100, time.Now()))
	c = connect(t, bus.Address)
	waitOwned(t, c, Name(dir))
	waitFor(t, func() bool { return getAll(t, c, dir)["BytesDone"].Value() == uint64(42) })
	if n := strings.Count(logs.String(), "lost the D-Bus"); n != 1 {
		t.Errorf("%d log lines about the lost bus, want 1:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "published again") {
		t.Errorf("no log line about the bus being back:\n%s", logs)
	}
	if n := strings.Count(logs.String(), "cannot publish"); n > 1 {
		t.Errorf("%d log lines about failed reconnections, want at most 1:\n%s", n, logs)
	}
}

// TestNoBus: without a bus nothing fails or blocks, and one line is logged.
func TestNoBus(t *testing.T) {
	start := time.Now()
	p, logs, _ := newPublisher(t, "/srv/pg/nobus", "unix:path=/nonexistent/socket")
	for i := 0; i < 100000; i++ {
		p.Report(snap(progress.Copying, 1, int64(i), 100000, time.Now()))
	}
	p.Completed(false, "failed")
	p.Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("100000 reports, Completed and Close without a bus took %s", d)
	}
	if n := strings.Count(logs.String(), "level="); n != 1 {
		t.Errorf("%d log lines without a bus, want 1:\n%s", n, logs)
	}
}
