package busapi

import (
	"fmt"
	"maps"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"

	"github.com/pg-standby/pg-standby/internal/progress"
	"github.com/pg-standby/pg-standby/internal/wal"
)

// loop is the publisher's one goroutine: it owns the connection, turns
// snapshots into properties and sends the signals. It ends with Close.
func (p *Publisher) loop() {
	defer close(p.done)
	if p.cfg.LastError != nil {
		p.lastError = p.cfg.LastError()
		p.set(map[string]dbus.Variant{"LastError": dbus.MakeVariant(p.lastError)})
	}
	var (
		conn     *dbus.Conn
		lost     <-chan struct{}
		emitted  map[string]dbus.Variant // what subscribers were last told
		lastEmit time.Time
		down     bool // the bus is unreachable and that was logged
		ever     bool // connected at least once
		backoff  = firstRetry
	)
	retry := time.NewTimer(0)
	defer retry.Stop()
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	flush := func(force bool) {
		if conn == nil {
			return
		}
		p.mu.Lock()
		changed := map[string]dbus.Variant{}
		onlyProgress := true
		for k, v := range p.props {
			if old, ok := emitted[k]; !ok || old.String() != v.String() {
				changed[k] = v
				onlyProgress = onlyProgress && progressProps[k]
			}
		}
		p.mu.Unlock()
		if len(changed) == 0 || (!force && onlyProgress && time.Since(lastEmit) < progressEvery) {
			return
		}
		if err := conn.Emit(p.path, "org.freedesktop.DBus.Properties.PropertiesChanged", Interface, changed, []string{}); err != nil {
			return // the connection is going; lost fires
		}
		maps.Copy(emitted, changed)
		lastEmit = time.Now()
	}
	for {
		select {
		case <-p.ctx.Done():
			if conn != nil {
				conn.ReleaseName(p.name)
				conn.Close()
			}
			return
		case s := <-p.snaps:
			p.apply(s)
			flush(false)
		case <-tick.C:
			flush(false)
		case e := <-p.ends:
			p.finish(e)
			flush(true)
			if conn != nil {
				conn.Emit(p.path, Interface+".Completed", e.success, e.message)
			}
			close(e.sent)
		case <-lost:
			conn, lost = nil, nil
			if !down {
				p.log.Warn("lost the D-Bus system bus; status is not published until it is back", "bus_name", p.name)
				down = true
			}
			backoff = firstRetry
			retry.Reset(backoff)
		case <-retry.C:
			c, err := p.connect()
			if err != nil {
				if p.ctx.Err() != nil {
					continue // closed while connecting: nothing to say
				}
				if !down {
					if ever {
						p.log.Warn("cannot publish status on D-Bus; retrying in the background", "error", err.Error())
					} else {
						p.log.Info("status not published on D-Bus (no system bus?); retrying in the background", "error", err.Error())
					}
					down = true
				}
				backoff = min(2*backoff, maxRetry)
				retry.Reset(backoff)
				continue
			}
			if down && ever {
				p.log.Info("D-Bus status published again", "bus_name", p.name)
			} else {
				p.log.Debug("D-Bus status published", "bus_name", p.name, "object_path", string(p.path))
			}
			conn, lost, down, ever, backoff = c, c.Context().Done(), false, true, firstRetry
			// A new connection has no subscribers that missed anything:
			// they read the properties with GetAll.
			p.mu.Lock()
			emitted = maps.Clone(p.props)
			p.mu.Unlock()
			lastEmit = time.Time{}
		}
	}
}

// connect connects, exports the object and takes the bus name.
func (p *Publisher) connect() (*dbus.Conn, error) {
	var (
		c   *dbus.Conn
		err error
	)
	if p.cfg.Address != "" {
		c, err = dbus.Connect(p.cfg.Address, dbus.WithContext(p.ctx))
	} else {
		c, err = dbus.ConnectSystemBus(dbus.WithContext(p.ctx))
	}
	if err != nil {
		return nil, fmt.Errorf("connect to the system bus: %w", err)
	}
	obj := &object{p: p, conn: c}
	for _, x := range []struct {
		v     any
		iface string
	}{
		{obj, Interface},
		{properties{p}, "org.freedesktop.DBus.Properties"},
		{introspect.Introspectable(p.xml), "org.freedesktop.DBus.Introspectable"},
	} {
		if err := c.Export(x.v, p.path, x.iface); err != nil {
			c.Close()
			return nil, fmt.Errorf("export %s: %w", x.iface, err)
		}
	}
	reply, err := c.RequestName(p.name, dbus.NameFlagDoNotQueue)
	if err == nil && reply != dbus.RequestNameReplyPrimaryOwner && reply != dbus.RequestNameReplyAlreadyOwner {
		err = fmt.Errorf("it has another owner (%s)", reply)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("own bus name %s: %w", p.name, err)
	}
	return c, nil
}

// set changes properties (under the lock the method handlers take).
func (p *Publisher) set(v map[string]dbus.Variant) {
	p.mu.Lock()
	maps.Copy(p.props, v)
	p.mu.Unlock()
}

// apply turns a snapshot into properties.
func (p *Publisher) apply(s progress.Snapshot) {
	p.mu.Lock()
	done := p.completed
	p.mu.Unlock()
	if done {
		return
	}
	newAttempt := s.Attempt != p.last.Attempt || s.Streamed < p.last.Streamed
	if newAttempt {
		p.samples = p.samples[:0]
	}
	if (newAttempt || s.Phase != p.last.Phase) && p.cfg.LastError != nil {
		p.lastError = p.cfg.LastError()
	}
	p.last = s
	at := s.At
	if at.IsZero() {
		at = time.Now()
	}
	p.samples = append(p.samples, sample{at, s.Streamed})
	for len(p.samples) > 2 && at.Sub(p.samples[1].at) >= rateWindow {
		p.samples = p.samples[1:]
	}
	var rate float64
	if first := p.samples[0]; at.Sub(first.at) > 0 {
		rate = float64(s.Streamed-first.bytes) / at.Sub(first.at).Seconds()
	}
	frac, valid := s.Fraction()
	var eta uint64
	if s.Phase == progress.Copying && rate > 0 && s.Total > s.Streamed {
		eta = uint64(at.Add(time.Duration(float64(s.Total-s.Streamed) / rate * float64(time.Second))).UnixMicro())
	}
	v := map[string]dbus.Variant{
		"Phase":           dbus.MakeVariant(PhaseID(s.Phase)),
		"BytesDone":       dbus.MakeVariant(uint64(max(s.Streamed, 0))),
		"BytesTotal":      dbus.MakeVariant(uint64(max(s.Total, 0))),
		"Progress":        dbus.MakeVariant(frac),
		"ProgressValid":   dbus.MakeVariant(valid),
		"Rate":            dbus.MakeVariant(uint64(max(rate, 0))),
		"StartTime":       dbus.MakeVariant(uint64(at.Add(-s.Elapsed).UnixMicro())),
		"ExpectedEndTime": dbus.MakeVariant(eta),
		"Primary":         dbus.MakeVariant(s.Primary),
		"StartLSN":        dbus.MakeVariant(lsn(s.StartLSN)),
		"EndLSN":          dbus.MakeVariant(lsn(s.EndLSN)),
		"LastError":       dbus.MakeVariant(p.lastError),
		"AttemptKind":     dbus.MakeVariant(s.Kind),
		"BytesReused":     dbus.MakeVariant(uint64(max(s.Reused, 0))),
	}
	if s.Attempt > 0 {
		v["Attempt"] = dbus.MakeVariant(uint32(s.Attempt))
	}
	p.set(v)
}

func lsn(l uint64) string {
	if l == 0 {
		return ""
	}
	return wal.LSN(l).String()
}

// finish records the end of the job in the properties.
func (p *Publisher) finish(e end) {
	phase := PhaseDone
	v := map[string]dbus.Variant{"Cancelable": dbus.MakeVariant(false), "ExpectedEndTime": dbus.MakeVariant(uint64(0))}
	if !e.success {
		phase = PhaseFailed
		if p.cancelled() {
			phase = PhaseCancelled
		}
		v["LastError"] = dbus.MakeVariant(e.message)
	}
	v["Phase"] = dbus.MakeVariant(phase)
	p.mu.Lock()
	p.completed = true
	maps.Copy(p.props, v)
	p.mu.Unlock()
}

// cancelled reports whether Cancel() was accepted.
func (p *Publisher) cancelled() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cancelCalled
}

// object is the job interface on one connection.
type object struct {
	p    *Publisher
	conn *dbus.Conn
}

// Cancel stops the backup, if the caller is root, postgres or the worker's
// own user (checked with the bus daemon, besides its policy).
func (o *object) Cancel(sender dbus.Sender) *dbus.Error {
	p := o.p
	var uid uint32
	if err := o.conn.BusObject().Call("org.freedesktop.DBus.GetConnectionUnixUser", 0, string(sender)).Store(&uid); err != nil {
		return dbus.MakeFailedError(fmt.Errorf("cannot identify the caller: %w", err))
	}
	if !p.allowed[uid] {
		p.log.Warn("refused a D-Bus Cancel() from a user who may not cancel", "uid", uid, "sender", string(sender))
		return dbus.NewError(ErrAccessDenied, []any{fmt.Sprintf("uid %d may not cancel this backup (only root and postgres may)", uid)})
	}
	p.mu.Lock()
	done := p.completed
	if !done {
		p.cancelCalled = true
	}
	p.mu.Unlock()
	if done {
		return dbus.NewError(ErrNotCancelable, []any{"the backup has already completed"})
	}
	p.cancel.Do(func() {
		p.log.Warn("backup cancelled over D-Bus; the instance stays resumable", "uid", uid, "sender", string(sender))
		if p.cfg.Cancel != nil {
			go p.cfg.Cancel()
		}
	})
	return nil
}

// properties implements org.freedesktop.DBus.Properties, read-only.
type properties struct{ p *Publisher }

func (o properties) Get(iface, name string) (dbus.Variant, *dbus.Error) {
	if iface != Interface {
		return dbus.Variant{}, dbus.NewError("org.freedesktop.DBus.Error.UnknownInterface", []any{"no interface " + iface})
	}
	o.p.mu.Lock()
	v, ok := o.p.props[name]
	o.p.mu.Unlock()
	if !ok {
		return dbus.Variant{}, dbus.NewError("org.freedesktop.DBus.Error.UnknownProperty", []any{"no property " + name})
	}
	return v, nil
}

func (o properties) GetAll(iface string) (map[string]dbus.Variant, *dbus.Error) {
	if iface != Interface && iface != "" {
		return map[string]dbus.Variant{}, nil
	}
	o.p.mu.Lock()
	defer o.p.mu.Unlock()
	return maps.Clone(o.p.props), nil
}

func (o properties) Set(iface, name string, _ dbus.Variant) *dbus.Error {
	return dbus.NewError("org.freedesktop.DBus.Error.PropertyReadOnly", []any{"property " + name + " is read-only"})
}
