package fakeprimary

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pg-standby/pg-standby/internal/basebackup"
	"github.com/pg-standby/pg-standby/internal/wal"
)

// Script is what the server answers.
type Script struct {
	// ServerVersion is reported in the startup ParameterStatus; default "15.8".
	ServerVersion string
	// SystemID is IDENTIFY_SYSTEM's system identifier; default DefaultSystemID.
	SystemID string
	// Timeline of the backup and of IDENTIFY_SYSTEM; default 1.
	Timeline uint32
	// Start and End are the backup's positions; default DefaultStart, DefaultEnd.
	Start, End wal.LSN
	// Tablespaces are listed before the base directory's row.
	Tablespaces []basebackup.Tablespace
	// Stream holds the COPY stream's CopyData payloads, sent in order.
	Stream [][]byte
	// Raw, if set, is written verbatim after the stream (e.g. a malformed
	// message header), and then the connection is closed.
	Raw []byte
	// Cut closes the connection after the stream instead of ending the COPY.
	Cut bool
	// WAL, if set, scripts START_REPLICATION and TIMELINE_HISTORY per
	// timeline instead of the zero-filled stream up to End.
	WAL map[uint32]WALTimeline
}

// Defaults of a Script.
const (
	DefaultSystemID = "7390000000000000001"
	DefaultStart    = wal.LSN(0x2000028)
	DefaultEnd      = wal.LSN(0x2000138)
)

// Server is a running fake primary.
type Server struct {
	Port int

	script Script
	ln     net.Listener
	wg     sync.WaitGroup

	mu       sync.Mutex
	conns    map[net.Conn]bool
	commands []string
	statuses []StatusUpdate
	changed  chan struct{} // closed and replaced when statuses grows
}

// Start serves script on a free port of 127.0.0.1 until the test ends.
func Start(t testing.TB, script Script) *Server {
	t.Helper()
	if script.ServerVersion == "" {
		script.ServerVersion = "15.8"
	}
	if script.SystemID == "" {
		script.SystemID = DefaultSystemID
	}
	if script.Timeline == 0 {
		script.Timeline = 1
	}
	if script.Start == 0 {
		script.Start, script.End = DefaultStart, DefaultEnd
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fakeprimary: listen: %v", err)
	}
	s := &Server{Port: ln.Addr().(*net.TCPAddr).Port, script: script, ln: ln, conns: map[net.Conn]bool{}, changed: make(chan struct{})}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.Close)
	return s
}

// ConnString is a conninfo for the server (no password: it trusts everyone).
func (s *Server) ConnString() string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=replicator sslmode=disable connect_timeout=5", s.Port)
}

// Commands returns the queries received so far.
func (s *Server) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

// Close stops the server and closes its connections.
func (s *Server) Close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			_ = s.serve(c)
		}()
	}
}

// session is one connection.
type session struct {
	s      *Server
	c      net.Conn
	be     *pgproto3.Backend
	ending *WALTimeline // timeline whose end awaits the client's CopyDone
}

func (s *Server) serve(c net.Conn) error {
	ss := &session{s: s, c: c, be: pgproto3.NewBackend(c, c)}
	if err := ss.startup(); err != nil {
		return err
	}
	for {
		msg, err := ss.be.Receive()
		if err != nil {
			return err
		}
		switch m := msg.(type) {
		case *pgproto3.Query:
			s.mu.Lock()
			s.commands = append(s.commands, m.String)
			s.mu.Unlock()
			if err := ss.query(m.String); err != nil {
				return err
			}
		case *pgproto3.Terminate:
			return nil
		case *pgproto3.CopyData, *pgproto3.CopyDone:
			// Standby status updates; the end of a WAL stream.
			if err := ss.fromClient(msg); err != nil {
				return err
			}
		default:
			return fmt.Errorf("fakeprimary: unexpected %T", msg)
		}
	}
}

func (ss *session) startup() error {
	for {
		msg, err := ss.be.ReceiveStartupMessage()
		if err != nil {
			return err
		}
		switch msg.(type) {
		case *pgproto3.SSLRequest, *pgproto3.GSSEncRequest:
			if _, err := ss.c.Write([]byte{'N'}); err != nil {
				return err
			}
		case *pgproto3.StartupMessage:
			ss.be.Send(&pgproto3.AuthenticationOk{})
			ss.be.Send(&pgproto3.ParameterStatus{Name: "server_version", Value: ss.s.script.ServerVersion})
			ss.be.Send(&pgproto3.ParameterStatus{Name: "server_encoding", Value: "UTF8"})
			ss.be.Send(&pgproto3.ParameterStatus{Name: "client_encoding", Value: "UTF8"})
			ss.be.Send(&pgproto3.ParameterStatus{Name: "integer_datetimes", Value: "on"})
			ss.be.Send(&pgproto3.BackendKeyData{ProcessID: 4242, SecretKey: []byte{1, 2, 3, 4}})
			ss.be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
			return ss.be.Flush()
		default:
			return fmt.Errorf("fakeprimary: unexpected startup message %T", msg)
		}
	}
}

// rows sends one result set of text columns; nil values are NULL.
func (ss *session) rows(tag string, cols []string, rows ...[]*string) {
	rd := &pgproto3.RowDescription{}
	for _, c := range cols {
		rd.Fields = append(rd.Fields, pgproto3.FieldDescription{Name: []byte(c), DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1})
	}
	ss.be.Send(rd)
	for _, r := range rows {
		dr := &pgproto3.DataRow{}
		for _, v := range r {
			if v == nil {
				dr.Values = append(dr.Values, nil)
			} else {
				dr.Values = append(dr.Values, []byte(*v))
			}
		}
		ss.be.Send(dr)
	}
	ss.be.Send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
}

func str(s string) *string { return &s }

func (ss *session) ready() error {
	ss.be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	return ss.be.Flush()
}

func (ss *session) fail(code, msg string) error {
	ss.be.Send(&pgproto3.ErrorResponse{Severity: "ERROR", Code: code, Message: msg})
	return ss.ready()
}

var startReplication = regexp.MustCompile(`^START_REPLICATION (?:SLOT \S+ )?PHYSICAL ([0-9A-F]+/[0-9A-F]+) TIMELINE (\d+)$`)

func (ss *session) query(q string) error {
	sc := &ss.s.script
	switch {
	case q == "IDENTIFY_SYSTEM":
		ss.rows("IDENTIFY_SYSTEM", []string{"systemid", "timeline", "xlogpos", "dbname"},
			[]*string{str(sc.SystemID), str(strconv.Itoa(int(sc.Timeline))), str(sc.End.String()), nil})
		return ss.ready()
	case q == "SHOW wal_segment_size":
		ss.rows("SHOW", []string{"wal_segment_size"}, []*string{str("16MB")})
		return ss.ready()
	case q == "SHOW data_directory_mode":
		ss.rows("SHOW", []string{"data_directory_mode"}, []*string{str("0700")})
		return ss.ready()
	case strings.HasPrefix(q, "CREATE_REPLICATION_SLOT "):
		name := strings.Trim(strings.Fields(q)[1], `"`)
		ss.rows("CREATE_REPLICATION_SLOT", []string{"slot_name", "consistent_point", "snapshot_name", "output_plugin"},
			[]*string{str(name), str(sc.Start.String()), nil, nil})
		return ss.ready()
	case strings.HasPrefix(q, "READ_REPLICATION_SLOT "):
		ss.rows("READ_REPLICATION_SLOT", []string{"slot_type", "restart_lsn", "restart_tli"}, []*string{nil, nil, nil})
		return ss.ready()
	case strings.HasPrefix(q, "BASE_BACKUP"):
		return ss.baseBackup()
	case strings.HasPrefix(q, "START_REPLICATION "):
		m := startReplication.FindStringSubmatch(q)
		if m == nil {
			return ss.fail("42601", "fakeprimary: cannot parse "+q)
		}
		from, err := wal.ParseLSN(m[1])
		if err != nil {
			return ss.fail("42601", err.Error())
		}
		if sc.WAL != nil {
			tli, _ := strconv.ParseUint(m[2], 10, 32)
			tl, ok := sc.WAL[uint32(tli)]
			if !ok {
				return ss.fail("58P01", "fakeprimary: no script for timeline "+m[2])
			}
			return ss.scriptedWAL(tl)
		}
		return ss.walStream(from)
	case strings.HasPrefix(q, "TIMELINE_HISTORY "):
		tli, err := strconv.ParseUint(strings.TrimPrefix(q, "TIMELINE_HISTORY "), 10, 32)
		if err != nil {
			return ss.fail("42601", "fakeprimary: cannot parse "+q)
		}
		return ss.timelineHistory(uint32(tli))
	default:
		return ss.fail("42601", "fakeprimary: unsupported command "+q)
	}
}

func (ss *session) baseBackup() error {
	sc := &ss.s.script
	tli := strconv.Itoa(int(sc.Timeline))
	ss.rows("SELECT", []string{"recptr", "tli"}, []*string{str(sc.Start.String()), str(tli)})
	var list [][]*string
	for _, ts := range sc.Tablespaces {
		list = append(list, []*string{str(strconv.FormatUint(uint64(ts.OID), 10)), str(ts.Location), str(strconv.FormatInt(ts.SizeKB, 10))})
	}
	list = append(list, []*string{nil, nil, str("1")})
	ss.rows("SELECT", []string{"spcoid", "spclocation", "size"}, list...)
	ss.be.Send(&pgproto3.CopyOutResponse{OverallFormat: 0})
	for _, p := range sc.Stream {
		ss.be.Send(&pgproto3.CopyData{Data: p})
		// Flush now and then so that large scripts do not pile up.
		if err := ss.be.Flush(); err != nil {
			return err
		}
	}
	if sc.Raw != nil {
		if err := ss.be.Flush(); err != nil {
			return err
		}
		if _, err := ss.c.Write(sc.Raw); err != nil {
			return err
		}
		return errors.New("raw bytes sent: closing")
	}
	if sc.Cut {
		ss.be.Flush()
		return errors.New("cut")
	}
	ss.be.Send(&pgproto3.CopyDone{})
	ss.rows("SELECT", []string{"recptr", "tli"}, []*string{str(sc.End.String()), str(tli)})
	ss.be.Send(&pgproto3.CommandComplete{CommandTag: []byte("BASE_BACKUP")})
	return ss.ready()
}

// walStream sends zero WAL from the segment start at from up to the script's
// end, then nothing: the client ends the stream by closing the connection.
func (ss *session) walStream(from wal.LSN) error {
	end := ss.s.script.End
	ss.be.Send(&pgproto3.CopyBothResponse{OverallFormat: 0})
	for pos := from; pos < end; {
		n := min(end-pos, 8192)
		msg := make([]byte, 25+n)
		msg[0] = 'w'
		binary.BigEndian.PutUint64(msg[1:], uint64(pos))
		binary.BigEndian.PutUint64(msg[9:], uint64(end))
		ss.be.Send(&pgproto3.CopyData{Data: msg})
		pos += n
	}
	return ss.be.Flush()
}
