package backup

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/pg-standby/pg-standby/internal/incremental"
	"github.com/pg-standby/pg-standby/internal/manifest"
	"github.com/pg-standby/pg-standby/internal/tarstream"
)

// recorder is the end of a chain: what each member came out as.
type recorder struct {
	sizes    map[string]int64
	contents map[string]*bytes.Buffer
	closed   bool
}

func (r *recorder) Write(part tarstream.Part, m *tarstream.Member, p []byte) error {
	switch part {
	case tarstream.Header:
		r.sizes[m.Name] = m.Size
		r.contents[m.Name] = &bytes.Buffer{}
	case tarstream.Contents:
		r.contents[m.Name].Write(p)
	}
	return nil
}

func (r *recorder) Close() error { r.closed = true; return nil }

// TestLabelFilter: backup_label reaches the writer without its INCREMENTAL
// FROM lines, with the member size patched, and the entry handed on has the
// written bytes' size and CRC-32C; other members pass as they came.
func TestLabelFilter(t *testing.T) {
	label := "START WAL LOCATION: 0/4000028 (file 000000010000000000000004)\nCHECKPOINT LOCATION: 0/4000080\n" +
		"BACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-12-02 05:00:00 UTC\nLABEL: x\nSTART TIMELINE: 1\n" +
		"INCREMENTAL FROM LSN: 0/2000028\nINCREMENTAL FROM TLI: 1\n"
	want := strings.Split(label, "INCREMENTAL")[0]
	rec := &recorder{sizes: map[string]int64{}, contents: map[string]*bytes.Buffer{}}
	var got *incremental.ManifestFile
	l := newLabelFilter(rec, func(f incremental.ManifestFile) { got = &f })
	send := func(name string, data string, chunk int) {
		m := &tarstream.Member{Name: name, Type: tarstream.File, Mode: 0o600, Size: int64(len(data))}
		if err := l.Write(tarstream.Header, m, nil); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(data); i += chunk {
			if err := l.Write(tarstream.Contents, m, []byte(data[i:min(i+chunk, len(data))])); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Write(tarstream.Trailer, m, nil); err != nil {
			t.Fatal(err)
		}
	}
	send("PG_VERSION", "17\n", 1)
	send(labelName, label, 7)
	send("global/1262", "INCREMENTAL FROM LSN: 0/1\n", 5)
	if err := l.Close(); err != nil || !rec.closed {
		t.Fatalf("Close: %v, next closed %v", err, rec.closed)
	}
	if s := rec.contents[labelName].String(); s != want || rec.sizes[labelName] != int64(len(want)) {
		t.Errorf("backup_label written as %q (member size %d), want %q (%d)", s, rec.sizes[labelName], want, len(want))
	}
	for name, data := range map[string]string{"PG_VERSION": "17\n", "global/1262": "INCREMENTAL FROM LSN: 0/1\n"} {
		if s := rec.contents[name].String(); s != data || rec.sizes[name] != int64(len(data)) {
			t.Errorf("%s written as %q (size %d), want it unchanged: %q", name, s, rec.sizes[name], data)
		}
	}
	// The manifest's CRC-32C bytes are the server's uint32 in little-endian order.
	sum := binary.LittleEndian.AppendUint32(nil, crc32.Checksum([]byte(want), crc32.MakeTable(crc32.Castagnoli)))
	if got == nil || got.Path != labelName || got.Size != int64(len(want)) || got.Algorithm != manifest.CRC32C || !bytes.Equal(got.Checksum, sum) {
		t.Errorf("entry %+v, want backup_label, size %d, CRC-32C %x", got, len(want), sum)
	}

	big := &tarstream.Member{Name: labelName, Type: tarstream.File, Size: incremental.MaxBackupLabel + 1}
	if err := newLabelFilter(rec, nil).Write(tarstream.Header, big, nil); err == nil || KindOf(err) != Protocol {
		t.Errorf("a backup_label of %d bytes: %v (%v), want a protocol violation", big.Size, err, KindOf(err))
	}
}
