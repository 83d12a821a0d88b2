package backup

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pg-standby/pg-standby/internal/basebackup"
	"github.com/pg-standby/pg-standby/internal/durable"
	"github.com/pg-standby/pg-standby/internal/extract"
	"github.com/pg-standby/pg-standby/internal/incremental"
	"github.com/pg-standby/pg-standby/internal/oracle"
	"github.com/pg-standby/pg-standby/internal/resume"
	"github.com/pg-standby/pg-standby/internal/tarstream"
)

// TestRebuildGroups drives the reconstruction stage with members as a
// resuming attempt's archive brings them, and checks each file on disk
// against the journal at every step: a listed file sent whole is unlisted
// before its header reaches the writer; a small increment is held, the
// file untouched and still listed; an increment too large for what is held
// is written as it comes, after one append that unlists it and the held
// group, which is then written; the archive's end writes the last group;
// every changed file is reconstructed and handed to the Syncer, a group in
// one batch.
func TestRebuildGroups(t *testing.T) {
	p := incremental.DefaultParams()
	bs := p.BlockSize
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	prior := func(name string, blocks int) []byte {
		b := bytes.Repeat([]byte{'p'}, blocks*bs)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
		return b
	}
	priors := map[string][]byte{"a": prior("a", 2), "b": prior("b", 4), "b2": prior("b2", 4), "c": prior("c", 4),
		"d": prior("d", 4), "e": prior("e", 4), "f": prior("f", 4)}

	jr, _, err := openJournal(root, true)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]resume.Entry{}
	for name, b := range priors {
		listed[name] = resume.Entry{Size: int64(len(b)), StartLSN: 0x1000000, Timeline: 1}
		if err := jr.append(resume.Record{Kind: resume.Complete, Path: name, Size: int64(len(b)), StartLSN: 0x1000000, Timeline: 1}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var batches [][]string
	syncer := durable.NewSyncer(1, 0)
	syncer.OnDurable(func(b []durable.Synced) error {
		mu.Lock()
		defer mu.Unlock()
		var names []string
		for _, f := range b {
			names = append(names, filepath.Base(f.Name))
		}
		slices.Sort(names)
		batches = append(batches, names)
		return nil
	})
	plan := &incPlan{listed: listed, params: p, reused: &atomic.Int64{}}
	plan.held.Limit = 2 * bs // b and b2 (a block each) fit, c (three) never does
	next := &headerCheck{t: t, dir: dir}
	s := (&dest{inc: plan, jr: jr, cfg: &extract.Config{Syncer: syncer}}).rebuildStage(next, root, "")

	state := func(name string) (changed, isListed bool) {
		now, _ := os.ReadFile(filepath.Join(dir, name))
		_, isListed = oracle.Journal(t, dir)[name]
		return !bytes.Equal(now, priors[name]), isListed
	}
	feed := func(name string, data []byte, parts ...tarstream.Part) {
		m := &tarstream.Member{Name: name, Type: tarstream.File, Mode: 0o600, Size: int64(len(data))}
		for _, part := range parts {
			var b []byte
			if part == tarstream.Contents {
				b = data
			}
			if err := s.Write(part, m, b); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
	whole, contents, trailer := tarstream.Header, tarstream.Contents, tarstream.Trailer

	feed("a", bytes.Repeat([]byte{'w'}, 2*bs), whole) // headerCheck: a is unlisted by now
	feed("a", nil, trailer)
	if !next.sawA {
		t.Fatal("the writer never got a's header")
	}

	feed("INCREMENTAL.b", increment(p, 4, []uint32{1}, 'b'), whole, contents, trailer)
	feed("INCREMENTAL.b2", increment(p, 5, []uint32{4}, 'b'), whole, contents, trailer) // extended by a block
	for _, name := range []string{"b", "b2"} {
		if changed, isListed := state(name); changed || !isListed {
			t.Fatalf("%s held: changed %v, listed %v; want untouched and listed", name, changed, isListed)
		}
	}

	incC := increment(p, 4, []uint32{0, 2, 3}, 'c')
	m := &tarstream.Member{Name: "INCREMENTAL.c", Type: tarstream.File, Mode: 0o600, Size: int64(len(incC))}
	if err := s.Write(tarstream.Header, m, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(tarstream.Contents, m, incC[:len(incC)-bs]); err != nil { // c's first two blocks
		t.Fatal(err)
	}
	if changed, isListed := state("c"); !changed || isListed {
		t.Fatalf("c written as it comes: changed %v, listed %v; want changed and unlisted", changed, isListed)
	}
	for _, name := range []string{"b", "b2"} {
		if changed, isListed := state(name); !changed || isListed {
			t.Fatalf("%s after c's Forget: changed %v, listed %v; want written and unlisted", name, changed, isListed)
		}
	}
	if err := s.Write(tarstream.Contents, m, incC[len(incC)-bs:]); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(tarstream.Trailer, m, nil); err != nil {
		t.Fatal(err)
	}

	feed("INCREMENTAL.d", increment(p, 4, []uint32{3}, 'd'), whole, contents, trailer)
	feed("INCREMENTAL.e", increment(p, 4, nil, 'e'), whole, contents, trailer) // left as it was
	if changed, isListed := state("d"); changed || !isListed {
		t.Fatalf("d held: changed %v, listed %v", changed, isListed)
	}
	// f's two blocks fit only once d's group is written (MakeRoom).
	feed("INCREMENTAL.f", increment(p, 3, []uint32{0, 2}, 'f'), whole, contents, trailer) // cut by a block
	if changed, isListed := state("d"); !changed || isListed {
		t.Fatalf("d once f needed the room: changed %v, listed %v; want written and unlisted", changed, isListed)
	}
	if changed, isListed := state("f"); changed || !isListed {
		t.Fatalf("f held: changed %v, listed %v", changed, isListed)
	}
	if err := s.Write(tarstream.ArchiveEnd, nil, nil); err != nil {
		t.Fatal(err)
	}
	if changed, isListed := state("f"); !changed || isListed {
		t.Fatalf("f after the archive's end: changed %v, listed %v; want written, unlisted until its batch", changed, isListed)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syncer.Wait(); err != nil {
		t.Fatal(err)
	}
	if changed, isListed := state("e"); changed || !isListed {
		t.Fatalf("e, left as it was: changed %v, listed %v", changed, isListed)
	}
	for name, c := range map[string]struct {
		length int
		blocks []uint32
	}{"b": {4, []uint32{1}}, "b2": {5, []uint32{4}}, "c": {4, []uint32{0, 2, 3}}, "d": {4, []uint32{3}}, "f": {3, []uint32{0, 2}}} {
		got, _ := os.ReadFile(filepath.Join(dir, name))
		want := make([]byte, c.length*bs)
		copy(want, priors[name])
		for _, b := range c.blocks {
			copy(want[int(b)*bs:], blockFor(p, name[0], b))
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not the reconstruction (%d bytes, want %d)", name, len(got), len(want))
		}
	}
	// Batches follow the Syncer's bounds (250 ms, 8 MiB), but a group is
	// never split: b and b2 share one.
	var all []string
	for _, b := range batches {
		if slices.Contains(b, "b") != slices.Contains(b, "b2") {
			t.Errorf("b and b2, one group, in different batches: %v", batches)
		}
		all = append(all, b...)
	}
	slices.Sort(all)
	if want := []string{"b", "b2", "c", "d", "f"}; !slices.Equal(all, want) {
		t.Errorf("made durable %v; want %v", all, want)
	}
	if plan.changed != 5 || plan.rebuilt != 6 || plan.blocks != 8 {
		t.Errorf("counted %d changed, %d rebuilt, %d blocks; want 5, 6, 8", plan.changed, plan.rebuilt, plan.blocks)
	}
}

// headerCheck is the writer's side: at a's header the journal must no
// longer list a.
type headerCheck struct {
	t    *testing.T
	dir  string
	sawA bool
}

func (h *headerCheck) Write(part tarstream.Part, m *tarstream.Member, _ []byte) error {
	if part == tarstream.Header && m.Name == "a" {
		h.sawA = true
		if _, ok := oracle.Journal(h.t, h.dir)["a"]; ok {
			h.t.Error("a listed file sent whole reached the writer still listed")
		}
	}
	return nil
}

func (h *headerCheck) Close() error { return nil }

// increment is an INCREMENTAL file (basebackup_incremental.c's layout) of
// a file of length blocks sending blocks, each filled by blockFor.
func increment(p incremental.Params, length uint32, blocks []uint32, tag byte) []byte {
	ne := binary.NativeEndian
	out := ne.AppendUint32(nil, incremental.Magic)
	out = ne.AppendUint32(out, uint32(len(blocks)))
	out = ne.AppendUint32(out, length)
	for _, b := range blocks {
		out = ne.AppendUint32(out, b)
	}
	if len(blocks) > 0 && len(out)%p.BlockSize != 0 { // padded to a block when blocks follow
		out = append(out, make([]byte, p.BlockSize-len(out)%p.BlockSize)...)
	}
	for _, b := range blocks {
		out = append(out, blockFor(p, tag, b)...)
	}
	return out
}

func blockFor(p incremental.Params, tag byte, b uint32) []byte {
	return bytes.Repeat([]byte{tag, byte(b)}, p.BlockSize/2)
}

// TestRebuildUnlistedIncrement: an increment of a file the attempt did not
// upload is a hostile or broken server's, refused as a stream error that
// names the member, with nothing written.
func TestRebuildUnlistedIncrement(t *testing.T) {
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	plan := &incPlan{listed: map[string]resume.Entry{}, params: incremental.DefaultParams(), reused: &atomic.Int64{}}
	syncer := durable.NewSyncer(1, 0)
	defer syncer.Wait()
	s := (&dest{inc: plan, cfg: &extract.Config{Syncer: syncer}}).rebuildStage(&headerCheck{t: t, dir: dir}, root, "")
	m := &tarstream.Member{Name: "base/5/INCREMENTAL.16384", Type: tarstream.File, Mode: 0o600, Size: 12}
	err = s.Write(tarstream.Header, m, nil)
	var se *basebackup.StreamError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "the primary sent base/5/INCREMENTAL.16384, an increment of a file not in the uploaded manifest") {
		t.Fatalf("got %v, want a stream error naming the member", err)
	}
	s.Close()
}
