package incremental

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/pg-standby/pg-standby/internal/resume"
)

// TestKilledReconstructionIsUnlisted follows the protocol the pipeline stage
// does: Forget in BeforeChange, before the first byte changes, Complete only
// after the fsync. A
// reconstruction stopped half-way (the process killed) leaves the file torn
// and unlisted; a finished one lists it again with the new attempt's start.
func TestKilledReconstructionIsUnlisted(t *testing.T) {
	dataDir := t.TempDir()
	root, err := os.OpenRoot(dataDir)
	must(t, err)
	defer root.Close()
	dir, err := os.Open(dataDir)
	must(t, err)
	defer dir.Close()

	prior := bytes.Repeat([]byte{'p'}, 10*small.BlockSize)
	must(t, os.WriteFile(filepath.Join(dataDir, "16384"), prior, 0o600))
	j, _, err := resume.Open(dir, resume.Name)
	must(t, err)
	must(t, j.Append(resume.Record{Kind: resume.Complete, Path: "16384", Size: int64(len(prior)), StartLSN: 0x3000000, Timeline: 1}))

	inc := encodeIncremental(small, 6, []uint32{2, 8}, func(b uint32) []byte { return blockOf(small, 'i', b) })
	// Attempt 2 starts at 0/5000000: forget, then die after half the increment.
	r, err := NewRebuilder(root, "16384", int64(len(prior)), int64(len(inc)), small)
	must(t, err)
	r.BeforeChange = func() error { return j.Forget("16384") }
	must(t, r.Write(inc[:len(inc)/2]))
	r.Abort()
	must(t, j.Close())

	entries, err := resume.Load(dir, resume.Name)
	must(t, err)
	if _, ok := entries["16384"]; ok {
		t.Fatalf("a half-reconstructed file is listed: %+v", entries)
	}
	torn, _ := os.ReadFile(filepath.Join(dataDir, "16384"))
	if bytes.Equal(torn, prior) {
		t.Fatal("the test did not tear the file")
	}

	// Attempt 3 would get the file whole; here a full increment from the
	// original prior shows the listed-again path.
	must(t, os.WriteFile(filepath.Join(dataDir, "16384"), prior, 0o600))
	j, _, err = resume.Open(dir, resume.Name)
	must(t, err)
	defer j.Close()
	r, err = NewRebuilder(root, "16384", int64(len(prior)), int64(len(inc)), small)
	must(t, err)
	must(t, r.Write(inc))
	res, err := r.Close()
	must(t, err)
	must(t, j.Append(resume.Record{Kind: resume.Complete, Path: "16384", Size: res.Size, StartLSN: 0x5000000, Timeline: 1}))
	entries, err = resume.Load(dir, resume.Name)
	must(t, err)
	if e := entries["16384"]; e.Size != 9*int64(small.BlockSize) || e.StartLSN != 0x5000000 {
		t.Fatalf("after reconstruction: %+v (result %+v)", e, res)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestUnchangedReconstruction: an increment that sends no block and keeps
// the length leaves the file untouched and never calls BeforeChange (the
// file stays listed: nothing was torn); one that changes the file calls it
// once, before the first change.
func TestUnchangedReconstruction(t *testing.T) {
	dataDir := t.TempDir()
	root, err := os.OpenRoot(dataDir)
	must(t, err)
	defer root.Close()
	prior := bytes.Repeat([]byte{'p'}, 10*small.BlockSize)
	name := filepath.Join(dataDir, "16384")
	must(t, os.WriteFile(name, prior, 0o600))

	inc := encodeIncremental(small, 10, nil, nil)
	r, err := NewRebuilder(root, "16384", int64(len(prior)), int64(len(inc)), small)
	must(t, err)
	r.BeforeChange = func() error { t.Error("BeforeChange for an increment that changes nothing"); return nil }
	must(t, r.Write(inc))
	res, err := r.Close()
	must(t, err)
	if res.Changed || res.Kept != 10 || res.Received != 0 {
		t.Errorf("unchanged increment: %+v", res)
	}

	inc = encodeIncremental(small, 10, []uint32{3}, func(b uint32) []byte { return blockOf(small, 'i', b) })
	calls := 0
	r, err = NewRebuilder(root, "16384", int64(len(prior)), int64(len(inc)), small)
	must(t, err)
	r.BeforeChange = func() error {
		calls++
		if now, _ := os.ReadFile(name); !bytes.Equal(now, prior) {
			t.Error("the file changed before BeforeChange")
		}
		return nil
	}
	must(t, r.Write(inc))
	if res, err = r.Close(); err != nil || !res.Changed || calls != 1 {
		t.Errorf("changed increment: %+v, %v, BeforeChange called %d times", res, err, calls)
	}
}
