package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestVerify(t *testing.T) {
	m := sampleManifest(2, CRC32C, sampleFiles)
	good := func() map[string]Observed { return observe(CRC32C, sampleFiles) }
	keepConf := func(p string) bool { return p == "postgresql.conf" }
	crc := func(s string) []byte { return sum(CRC32C, s) }

	for _, tc := range []struct {
		name     string
		m        *Manifest
		observed func() map[string]Observed
		keep     func(string) bool
		want     *Mismatch // nil: Verify returns nil
	}{
		{name: "all match", observed: good},
		{name: "all match, nil keep", observed: good, keep: nil},
		{
			name:     "missing",
			observed: func() map[string]Observed { o := good(); delete(o, "base/1/1259"); delete(o, "PG_VERSION"); return o },
			want:     &Mismatch{Missing: []string{"PG_VERSION", "base/1/1259"}},
		},
		{
			name: "extra",
			observed: func() map[string]Observed {
				o := good()
				o["zz"] = Observed{}
				o["base/1/9999"] = Observed{Size: 1}
				return o
			},
			want: &Mismatch{Extra: []string{"base/1/9999", "zz"}},
		},
		{
			name: "wrong size",
			observed: func() map[string]Observed {
				o := good()
				o["global/pg_control"] = Observed{Size: 8000, Checksum: crc("x")}
				return o
			},
			want: &Mismatch{WrongSize: []SizeMismatch{{Path: "global/pg_control", Manifest: 8192, Written: 8000}}},
		},
		{
			name: "wrong checksum",
			observed: func() map[string]Observed {
				o := good()
				o["PG_VERSION"] = Observed{Size: 3, Checksum: crc("16\n")}
				return o
			},
			want: &Mismatch{WrongChecksum: []ChecksumMismatch{{Path: "PG_VERSION", Algorithm: CRC32C, Manifest: crc("15\n"), Written: crc("16\n")}}},
		},
		{
			name: "no checksum computed",
			observed: func() map[string]Observed {
				o := good()
				o["PG_VERSION"] = Observed{Size: 3}
				return o
			},
			want: &Mismatch{WrongChecksum: []ChecksumMismatch{{Path: "PG_VERSION", Algorithm: CRC32C, Manifest: crc("15\n")}}},
		},
		{
			name: "checksum of another algorithm",
			observed: func() map[string]Observed {
				o := good()
				o["PG_VERSION"] = Observed{Size: 3, Checksum: sum(SHA256, "15\n")}
				return o
			},
			want: &Mismatch{WrongChecksum: []ChecksumMismatch{{Path: "PG_VERSION", Algorithm: CRC32C, Manifest: crc("15\n"), Written: sum(SHA256, "15\n")}}},
		},
		{
			name:     "manifest without checksums compares sizes only",
			m:        sampleManifest(1, None, sampleFiles),
			observed: good,
		},
		{
			name:     "kept file not written",
			observed: func() map[string]Observed { o := good(); delete(o, "postgresql.conf"); return o },
			keep:     keepConf,
		},
		{
			name: "kept file written differently",
			observed: func() map[string]Observed {
				o := good()
				o["postgresql.conf"] = Observed{Size: 1, Checksum: crc("x")}
				return o
			},
			keep: keepConf,
		},
		{
			name:     "kept file not in manifest",
			m:        sampleManifest(2, CRC32C, sampleFiles[:7]),
			observed: func() map[string]Observed { return observe(CRC32C, sampleFiles[:8]) },
			keep:     keepConf,
		},
		{
			name:     "kept file missing is fine, others still reported",
			observed: func() map[string]Observed { o := good(); delete(o, "postgresql.conf"); delete(o, "empty"); return o },
			keep:     keepConf,
			want:     &Mismatch{Missing: []string{"empty"}},
		},
		{
			name: "everything at once",
			observed: func() map[string]Observed {
				o := good()
				delete(o, "backup_label")
				o["stray"] = Observed{Size: 1}
				o["base/1/1259"] = Observed{Size: 1}
				o["odd-\xff name"] = Observed{Size: 9, Checksum: crc("NOT UTF-8")}
				return o
			},
			want: &Mismatch{
				Missing:       []string{"backup_label"},
				Extra:         []string{"stray"},
				WrongSize:     []SizeMismatch{{Path: "base/1/1259", Manifest: 8192, Written: 1}},
				WrongChecksum: []ChecksumMismatch{{Path: "odd-\xff name", Algorithm: CRC32C, Manifest: crc("not UTF-8"), Written: crc("NOT UTF-8")}},
			},
		},
		{
			name:     "nothing written",
			m:        sampleManifest(1, CRC32C, sampleFiles[:2]),
			observed: func() map[string]Observed { return nil },
			want:     &Mismatch{Missing: []string{"backup_label", "PG_VERSION"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mm := tc.m
			if mm == nil {
				mm = m
			}
			err := Verify(mm, tc.observed(), tc.keep)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			var got *Mismatch
			if !errors.As(err, &got) {
				t.Fatalf("Verify = %v (%T), want *Mismatch", err, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Verify = %#v\nwant %#v", got, tc.want)
			}
			if got.Count() == 0 || !strings.HasPrefix(err.Error(), "written files do not match the backup manifest: ") {
				t.Errorf("Error() = %q", err)
			}
		})
	}
}

func TestVerifyNilManifest(t *testing.T) {
	if err := Verify(nil, nil, nil); err == nil {
		t.Fatal("Verify(nil) = nil")
	}
}

func TestMismatchError(t *testing.T) {
	e := &Mismatch{
		Missing:       []string{"base/1/1259"},
		Extra:         []string{"stray"},
		WrongSize:     []SizeMismatch{{Path: "global/pg_control", Manifest: 8192, Written: 8000}},
		WrongChecksum: []ChecksumMismatch{{Path: "PG_VERSION", Algorithm: CRC32C, Manifest: []byte{1, 2, 3, 4}, Written: []byte{5, 6, 7, 8}}, {Path: "odd\xff", Algorithm: SHA224, Manifest: []byte{9}}},
	}
	want := `written files do not match the backup manifest: 1 missing, 1 not in manifest, 1 wrong size, 2 wrong checksum
	"base/1/1259": in the manifest, never written
	"stray": written, not in the manifest
	"global/pg_control": wrote 8000 bytes, manifest says 8192
	"PG_VERSION": CRC32C checksum 05060708, manifest says 01020304
	"odd\xff": no SHA224 checksum computed, manifest says 09`
	if got := e.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
}

func TestMismatchErrorCapped(t *testing.T) {
	var files []testFile
	for i := range 30 {
		files = append(files, testFile{fmt.Sprintf("base/1/%d", i), "x"})
	}
	m := sampleManifest(2, CRC32C, files)
	o := observe(CRC32C, files[25:])
	o["stray"] = Observed{}
	err := Verify(m, o, nil)
	var e *Mismatch
	if !errors.As(err, &e) || len(e.Missing) != 25 || len(e.Extra) != 1 {
		t.Fatalf("Verify = %#v", err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 1+MaxListed+1 {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), 1+MaxListed+1, err)
	}
	if last := lines[len(lines)-1]; last != "\tand 6 more" {
		t.Errorf("last line %q, want \"\\tand 6 more\"", last)
	}
	if !strings.Contains(lines[0], "25 missing, 1 not in manifest") {
		t.Errorf("summary %q", lines[0])
	}
}

// TestVerifyEachSeesEveryFile: each gets the files Parse gives, in order,
// and VerifyEach finds what VerifyReader finds.
func TestVerifyEachSeesEveryFile(t *testing.T) {
	data := render(sampleManifest(2, CRC32C, sampleFiles), renderOptions{})
	parsed, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	var got []File
	m, mismatch, err := VerifyEach(bytes.NewReader(data), observe(CRC32C, sampleFiles), nil, func(f *File) {
		got = append(got, File{Path: f.Path, Size: f.Size, Algorithm: f.Algorithm, Checksum: bytes.Clone(f.Checksum)})
	})
	if err != nil || mismatch != nil || m.NumFiles != len(parsed.Files) {
		t.Fatalf("VerifyEach: %v, %v, %d files", err, mismatch, m.NumFiles)
	}
	if !reflect.DeepEqual(got, parsed.Files) {
		t.Errorf("each saw %+v\nParse gives %+v", got, parsed.Files)
	}
}

// TestVerifyEachMarks: VerifyEach tells duplicates by marking observed
// itself; a path listed twice is refused as Parse refuses it, written or
// not, and observed is as it was when VerifyEach returns, so a second
// verification of the same map finds the same.
func TestVerifyEachMarks(t *testing.T) {
	for name, files := range map[string][]testFile{
		"written twice":     append(sampleFiles[:2:2], sampleFiles[0]),
		"not written twice": append(sampleFiles[:2:2], testFile{path: "lost", content: "x"}, testFile{path: "lost", content: "x"}),
	} {
		data := render(sampleManifest(2, CRC32C, files), renderOptions{})
		_, want := Parse(data)
		observed := observe(CRC32C, sampleFiles[:2])
		_, _, err := VerifyEach(bytes.NewReader(data), observed, nil, nil)
		if err == nil || want == nil || err.Error() != want.Error() {
			t.Errorf("%s: VerifyEach error %v, Parse %v", name, err, want)
		}
		if !reflect.DeepEqual(observed, observe(CRC32C, sampleFiles[:2])) {
			t.Errorf("%s: observed changed by a refused manifest: %+v", name, observed)
		}
	}

	data := render(sampleManifest(2, CRC32C, sampleFiles[1:]), renderOptions{})
	observed := observe(CRC32C, sampleFiles)
	var first error
	for i := range 2 {
		_, mismatch, err := VerifyEach(bytes.NewReader(data), observed, nil, nil)
		var mm *Mismatch
		if err != nil || !errors.As(mismatch, &mm) || !reflect.DeepEqual(mm.Extra, []string{sampleFiles[0].path}) {
			t.Fatalf("verification %d: %v, %v: want only %s extra", i+1, err, mismatch, sampleFiles[0].path)
		}
		if i == 1 && mismatch.Error() != first.Error() {
			t.Errorf("second verification: %v, first: %v", mismatch, first)
		}
		first = mismatch
	}
	if !reflect.DeepEqual(observed, observe(CRC32C, sampleFiles)) {
		t.Errorf("observed changed: %+v", observed)
	}
}
