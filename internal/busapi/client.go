package busapi

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

// Job is a running worker's state as read from the bus.
type Job struct {
	BusName         string
	Instance        string
	DataDirectory   string
	Phase           string
	Attempt         uint32
	AttemptKind     string
	BytesDone       uint64
	BytesReused     uint64
	BytesTotal      uint64
	Progress        float64
	ProgressValid   bool
	Rate            uint64
	StartTime       time.Time // zero if unknown
	ExpectedEndTime time.Time // zero if unknown
	Primary         string
	StartLSN        string
	EndLSN          string
	LastError       string
	Cancelable      bool
}

// Connect connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS, else the
// default socket).
func Connect() (*dbus.Conn, error) { return dbus.ConnectSystemBus() }

// Lookup reads the job of the worker of the instance in dataDir; ok is false
// when no worker of it is on the bus.
func Lookup(conn *dbus.Conn, dataDir string) (job Job, ok bool, err error) {
	name := Name(dataDir)
	var has bool
	if err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, name).Store(&has); err != nil {
		return Job{}, false, fmt.Errorf("ask the bus for %s: %w", name, err)
	}
	if !has {
		return Job{}, false, nil
	}
	job, err = read(conn, name)
	if err != nil {
		return Job{}, false, err
	}
	return job, true, nil
}

// List reads the jobs of every worker on the bus, by data directory.
func List(conn *dbus.Conn) ([]Job, error) {
	var names []string
	if err := conn.BusObject().Call("org.freedesktop.DBus.ListNames", 0).Store(&names); err != nil {
		return nil, fmt.Errorf("list bus names: %w", err)
	}
	var jobs []Job
	for _, n := range names {
		if !strings.HasPrefix(n, NamePrefix+".") {
			continue
		}
		j, err := read(conn, n)
		if err != nil {
			continue // it just ended
		}
		jobs = append(jobs, j)
	}
	sort.Slice(jobs, func(a, b int) bool { return jobs[a].DataDirectory < jobs[b].DataDirectory })
	return jobs, nil
}

// read reads the properties of the worker owning name; its object path ends
// in the same label as its name.
func read(conn *dbus.Conn, name string) (Job, error) {
	path := dbus.ObjectPath(PathPrefix + "/" + strings.TrimPrefix(name, NamePrefix+"."))
	var props map[string]dbus.Variant
	if err := conn.Object(name, path).Call("org.freedesktop.DBus.Properties.GetAll", 0, Interface).Store(&props); err != nil {
		return Job{}, fmt.Errorf("read the properties of %s: %w", name, err)
	}
	j := Job{BusName: name}
	get := func(k string, dst any) {
		if v, ok := props[k]; ok {
			_ = v.Store(dst) // a property of another type stays zero
		}
	}
	get("Instance", &j.Instance)
	get("DataDirectory", &j.DataDirectory)
	get("Phase", &j.Phase)
	get("Attempt", &j.Attempt)
	get("AttemptKind", &j.AttemptKind)
	get("BytesReused", &j.BytesReused)
	get("BytesDone", &j.BytesDone)
	get("BytesTotal", &j.BytesTotal)
	get("Progress", &j.Progress)
	get("ProgressValid", &j.ProgressValid)
	get("Rate", &j.Rate)
	get("Primary", &j.Primary)
	get("StartLSN", &j.StartLSN)
	get("EndLSN", &j.EndLSN)
	get("LastError", &j.LastError)
	get("Cancelable", &j.Cancelable)
	var start, end uint64
	get("StartTime", &start)
	get("ExpectedEndTime", &end)
	j.StartTime, j.ExpectedEndTime = micros(start), micros(end)
	return j, nil
}

func micros(us uint64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(int64(us))
}
