package manifest

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestParseRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version int
		alg     Algorithm
		opts    renderOptions
	}{
		{"v1 CRC32C", 1, CRC32C, renderOptions{}},
		{"v2 CRC32C", 2, CRC32C, renderOptions{}},
		{"v1 no checksums", 1, None, renderOptions{}},
		{"v2 SHA224", 2, SHA224, renderOptions{}},
		{"v2 SHA256", 2, SHA256, renderOptions{}},
		{"v2 SHA384", 2, SHA384, renderOptions{}},
		{"v2 SHA512", 2, SHA512, renderOptions{}},
		{"force-encode", 2, CRC32C, renderOptions{forceEncode: true}},
		{"zero-padded LSNs", 2, CRC32C, renderOptions{zeroPadLSN: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := sampleManifest(tc.version, tc.alg, sampleFiles)
			data := render(want, tc.opts)
			got, err := Parse(data)
			if err != nil {
				t.Fatalf("Parse: %v\n%s", err, data)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse = %+v\nwant %+v", got, want)
			}
			if err := Verify(got, observe(tc.alg, sampleFiles), nil); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func TestParseShapes(t *testing.T) {
	t.Run("no files", func(t *testing.T) {
		m, err := Parse(render(sampleManifest(1, CRC32C, nil), renderOptions{}))
		if err != nil || len(m.Files) != 0 {
			t.Fatalf("Parse = %+v, %v", m, err)
		}
	})
	t.Run("timeline switch", func(t *testing.T) {
		want := sampleManifest(2, CRC32C, sampleFiles[:2])
		// As AddWALInfoToBackupManifest writes them: newest timeline
		// first, each range ending where the next timeline began.
		want.WALRanges = []WALRange{
			{Timeline: 3, Start: 0x5000000, End: 0x5000100},
			{Timeline: 2, Start: 0x4000000, End: 0x5000000},
			{Timeline: 1, Start: 0x3000028, End: 0x4000000},
		}
		got, err := Parse(render(want, renderOptions{}))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Parse = %+v, %v", got, err)
		}
	})
	t.Run("explicit NONE and lower-case names", func(t *testing.T) {
		body := hdr1 + filesArray(
			`{ "Path": "a", "Size": 1, "Last-Modified": "x", "Checksum-Algorithm": "NONE" }`,
			`{ "Path": "b", "Size": 2, "Checksum-Algorithm": "crc32c", "Checksum": "0A0B0C0D" }`,
		) + walRanges
		m, err := Parse(sign(body))
		if err != nil {
			t.Fatal(err)
		}
		want := []File{{Path: "a", Size: 1}, {Path: "b", Size: 2, Algorithm: CRC32C, Checksum: []byte{10, 11, 12, 13}}}
		if !reflect.DeepEqual(m.Files, want) {
			t.Errorf("Files = %+v, want %+v", m.Files, want)
		}
	})
	t.Run("entry fields as encoding/json matches them", func(t *testing.T) {
		// Inside Files and WAL-Ranges entries a repeated field replaces the
		// earlier one, as in parse_manifest.c, and field names match
		// case-insensitively, where PostgreSQL would reject "path".
		body := hdr1 + filesArray(`{ "path": "a", "Path": "b", "SIZE": 1, "Size": 2 }`) +
			"\"WAL-Ranges\": [\n{ \"timeline\": 1, \"Timeline\": 2, \"start-lsn\": \"0/1\", \"End-LSN\": \"0/2\" }\n],\n"
		m, err := Parse(sign(body))
		if err != nil {
			t.Fatal(err)
		}
		if want := []File{{Path: "b", Size: 2}}; !reflect.DeepEqual(m.Files, want) {
			t.Errorf("Files = %+v, want %+v", m.Files, want)
		}
		if want := []WALRange{{Timeline: 2, Start: 1, End: 2}}; !reflect.DeepEqual(m.WALRanges, want) {
			t.Errorf("WALRanges = %+v, want %+v", m.WALRanges, want)
		}
	})
	t.Run("fields in another order", func(t *testing.T) {
		body := "{\"PostgreSQL-Backup-Manifest-Version\":2,\n" + walRanges +
			filesArray(`{"Checksum":"01020304","Size":1,"Checksum-Algorithm":"CRC32C","Path":"a"}`) +
			"\"System-Identifier\":1,\n"
		m, err := Parse(sign(body))
		if err != nil || m.SystemIdentifier != 1 || len(m.Files) != 1 {
			t.Fatalf("Parse = %+v, %v", m, err)
		}
	})
}

// Pieces of hand-written manifests.
const (
	hdr1      = "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n"
	hdr2      = "{ \"PostgreSQL-Backup-Manifest-Version\": 2,\n\"System-Identifier\": 7412345678901234567,\n"
	walRanges = "\"WAL-Ranges\": [\n{ \"Timeline\": 1, \"Start-LSN\": \"0/2000028\", \"End-LSN\": \"0/2000100\" }\n],\n"
	crc       = `"Checksum-Algorithm": "CRC32C", "Checksum": "01020304"`
	okFile    = `{ "Path": "ok", "Size": 1, "Last-Modified": "2024-05-06 07:08:09 GMT", ` + crc + ` }`
)

func filesArray(entries ...string) string {
	return "\"Files\": [\n" + strings.Join(entries, ",\n") + "\n],\n"
}

// withFile is a signed v1 manifest with okFile and one file entry made of
// fields.
func withFile(fields string) []byte {
	return sign(hdr1 + filesArray(okFile, "{ "+fields+" }") + walRanges)
}

// withWAL is a signed v1 manifest whose only WAL range has fields.
func withWAL(fields string) []byte {
	return sign(hdr1 + filesArray(okFile) + "\"WAL-Ranges\": [\n{ " + fields + " }\n],\n")
}

func TestParseRejects(t *testing.T) {
	good := render(sampleManifest(2, CRC32C, sampleFiles), renderOptions{})
	tamper := func(data []byte, old, new string) []byte {
		if !bytes.Contains(data, []byte(old)) {
			t.Fatalf("tamper: %q not in manifest", old)
		}
		return bytes.Replace(data, []byte(old), []byte(new), 1)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string // substring of the error
	}{
		// Document shape.
		{"empty input", nil, "unexpected EOF"},
		{"not JSON", []byte("hello\n\n"), "invalid character"},
		{"array", sign("[\n"), `expected "{"`},
		{"empty object", []byte("{}\n"), "empty object"},
		{"truncated", good[:len(good)/2], "unexpected EOF"},
		{"invalid UTF-8", sign(hdr1 + filesArray(`{ "Path": "caf`+"\xe9"+`", "Size": 1 }`) + walRanges), "invalid UTF-8 near byte 68"},
		{"trailing object", append(bytes.Clone(good), "{}\n"...), "trailing data"},
		{"trailing garbage", append(bytes.Clone(good), "x\n"...), "trailing data"},
		{"trailing comma", sign(hdr1 + filesArray(okFile+",") + walRanges), "invalid character ']'"},

		// Version and system identifier.
		{"version not first", sign("{ \"Files\": [],\n\"PostgreSQL-Backup-Manifest-Version\": 1,\n" + walRanges), `first field must be "PostgreSQL-Backup-Manifest-Version", found "Files"`},
		{"version 3", sign("{ \"PostgreSQL-Backup-Manifest-Version\": 3,\n" + filesArray(okFile) + walRanges), "unsupported manifest version 3"},
		{"version 0", sign("{ \"PostgreSQL-Backup-Manifest-Version\": 0,\n" + filesArray(okFile) + walRanges), "unsupported manifest version 0"},
		{"version 1.0", sign("{ \"PostgreSQL-Backup-Manifest-Version\": 1.0,\n" + filesArray(okFile) + walRanges), "unsupported manifest version 1.0"},
		{"version as string", sign("{ \"PostgreSQL-Backup-Manifest-Version\": \"1\",\n" + filesArray(okFile) + walRanges), "must be a number, found string"},
		{"version twice", sign(hdr1 + "\"PostgreSQL-Backup-Manifest-Version\": 1,\n" + filesArray(okFile) + walRanges), `duplicate field "PostgreSQL-Backup-Manifest-Version"`},
		{"v2 without System-Identifier", sign("{ \"PostgreSQL-Backup-Manifest-Version\": 2,\n" + filesArray(okFile) + walRanges), `version 2 manifest has no "System-Identifier"`},
		{"v1 with System-Identifier", sign(hdr1 + "\"System-Identifier\": 1,\n" + filesArray(okFile) + walRanges), "System-Identifier in a version 1 manifest"},
		{"System-Identifier negative", sign("{ \"PostgreSQL-Backup-Manifest-Version\": 2,\n\"System-Identifier\": -1,\n" + filesArray(okFile) + walRanges), "System-Identifier: strconv.ParseUint"},
		{"System-Identifier too big", sign("{ \"PostgreSQL-Backup-Manifest-Version\": 2,\n\"System-Identifier\": 18446744073709551616,\n" + filesArray(okFile) + walRanges), "value out of range"},
		{"System-Identifier twice", sign(hdr2 + "\"System-Identifier\": 1,\n" + filesArray(okFile) + walRanges), `duplicate field "System-Identifier"`},

		// Top-level fields.
		{"unknown top-level field", sign(hdr1 + "\"Comment\": \"hi\",\n" + filesArray(okFile) + walRanges), `unknown top-level field "Comment"`},
		{"field name case", sign(hdr1 + "\"files\": [],\n" + walRanges), `unknown top-level field "files"`},
		{"no Files", sign(hdr1 + walRanges), `no "Files"`},
		{"Files twice", sign(hdr1 + filesArray(okFile) + filesArray() + walRanges), `duplicate field "Files"`},
		{"Files null", sign(hdr1 + "\"Files\": null,\n" + walRanges), `expected "[", found null`},
		{"Files holds a string", sign(hdr1 + filesArray(`"x"`) + walRanges), "Files[0]: expected an object, found string"},
		{"no WAL-Ranges", sign(hdr1 + filesArray(okFile)), `no "WAL-Ranges"`},
		{"empty WAL-Ranges", sign(hdr1 + filesArray(okFile) + "\"WAL-Ranges\": [\n],\n"), `"WAL-Ranges" is empty`},
		{"WAL-Ranges twice", sign(hdr1 + filesArray(okFile) + walRanges + walRanges), `duplicate field "WAL-Ranges"`},

		// File entries: paths.
		{"no path", withFile(`"Size": 1`), "Files[1]: no Path or Encoded-Path"},
		{"both paths", withFile(`"Path": "a", "Encoded-Path": "61", "Size": 1`), "both Path and Encoded-Path"},
		{"empty path", withFile(`"Path": "", "Size": 1`), `path "" is empty`},
		{"absolute path", withFile(`"Path": "/etc/passwd", "Size": 1`), `path "/etc/passwd" is absolute`},
		{"dot-dot", withFile(`"Path": "..", "Size": 1`), `path ".." has a ".." component`},
		{"dot-dot inside", withFile(`"Path": "base/../../etc/passwd", "Size": 1`), `has a ".." component`},
		{"dot-dot in tablespace", withFile(`"Path": "pg_tblspc/16384/../../x", "Size": 1`), `has a ".." component`},
		{"double slash", withFile(`"Path": "base//1", "Size": 1`), `has an empty or "." component`},
		{"dot component", withFile(`"Path": "./base/1", "Size": 1`), `has an empty or "." component`},
		{"trailing slash", withFile(`"Path": "base/", "Size": 1`), `has an empty or "." component`},
		{"NUL", withFile(`"Path": "a\u0000b", "Size": 1`), "contains a NUL byte"},
		{"path not a string", withFile(`"Path": 7, "Size": 1`), "Path must be a JSON string, found number"},
		{"Encoded-Path odd length", withFile(`"Encoded-Path": "616", "Size": 1`), "is not hex"},
		{"Encoded-Path not hex", withFile(`"Encoded-Path": "zz", "Size": 1`), "is not hex"},
		{"Encoded-Path escaping", withFile(`"Encoded-Path": "2e2e2f78", "Size": 1`), `path "../x" has a ".." component`},
		{"Encoded-Path absolute", withFile(`"Encoded-Path": "2f78", "Size": 1`), `path "/x" is absolute`},
		{"duplicate path", withFile(`"Path": "ok", "Size": 1`), `Files[1] ("ok"): duplicate path`},
		{"duplicate through Encoded-Path", withFile(`"Encoded-Path": "6f6b", "Size": 1`), `Files[1] ("ok"): duplicate path`},
		{"duplicate through escape", withFile(`"Path": "\u006fk", "Size": 1`), `Files[1] ("ok"): duplicate path`},

		// File entries: other fields.
		{"no size", withFile(`"Path": "a"`), `Files[1] ("a"): no Size`},
		{"negative size", withFile(`"Path": "a", "Size": -1`), `Files[1] ("a"): negative Size -1`},
		{"fractional size", withFile(`"Path": "a", "Size": 1.5`), "Size must be a JSON integer, found number 1.5"},
		{"exponent size", withFile(`"Path": "a", "Size": 1e3`), "found number 1e3"},
		{"huge size", withFile(`"Path": "a", "Size": 9223372036854775808`), "found number 9223372036854775808"},
		{"size as string", withFile(`"Path": "a", "Size": "1"`), "Size must be a JSON integer, found string"},
		{"size null", withFile(`"Path": "a", "Size": null`), `Files[1] ("a"): no Size`},
		{"size object", withFile(`"Path": "a", "Size": {}`), "Size must be a JSON integer, found object"},
		{"Last-Modified not a string", withFile(`"Path": "a", "Size": 1, "Last-Modified": 5`), "Last-Modified must be a JSON string, found number"},
		{"unknown file field", withFile(`"Path": "a", "Size": 1, "Mode": "0600"`), `Files[1]: json: unknown field "Mode"`},

		// File entries: checksums.
		{"unknown algorithm", withFile(`"Path": "a", "Size": 1, "Checksum-Algorithm": "MD5", "Checksum": "00"`), `unknown checksum algorithm "MD5"`},
		{"checksum without algorithm", withFile(`"Path": "a", "Size": 1, "Checksum": "01020304"`), "Checksum without Checksum-Algorithm"},
		{"algorithm without checksum", withFile(`"Path": "a", "Size": 1, "Checksum-Algorithm": "CRC32C"`), "Checksum-Algorithm CRC32C without Checksum"},
		{"NONE with checksum", withFile(`"Path": "a", "Size": 1, "Checksum-Algorithm": "NONE", "Checksum": "01020304"`), "Checksum with Checksum-Algorithm NONE"},
		{"checksum not hex", withFile(`"Path": "a", "Size": 1, "Checksum-Algorithm": "CRC32C", "Checksum": "0102030g"`), `Checksum "0102030g" is not hex`},
		{"checksum odd length", withFile(`"Path": "a", "Size": 1, "Checksum-Algorithm": "CRC32C", "Checksum": "0102030"`), "is not hex"},
		{"empty checksum", withFile(`"Path": "a", "Size": 1, "Checksum-Algorithm": "CRC32C", "Checksum": ""`), `Checksum "" is 0 bytes, CRC32C has 4`},
		{"CRC32C too long", withFile(`"Path": "a", "Size": 1, "Checksum-Algorithm": "CRC32C", "Checksum": "0102030405060708"`), "is 8 bytes, CRC32C has 4"},
		{"SHA256 truncated to 28 bytes", withFile(`"Path": "a", "Size": 1, "Checksum-Algorithm": "SHA256", "Checksum": "` + strings.Repeat("ab", 28) + `"`), "is 28 bytes, SHA256 has 32"},
		{"SHA512 too short", withFile(`"Path": "a", "Size": 1, "Checksum-Algorithm": "SHA512", "Checksum": "` + strings.Repeat("ab", 32) + `"`), "is 32 bytes, SHA512 has 64"},
		{"checksum as number", withFile(`"Path": "a", "Size": 1, "Checksum-Algorithm": "CRC32C", "Checksum": 1234`), "Checksum must be a JSON string, found number"},

		// WAL ranges.
		{"no timeline", withWAL(`"Start-LSN": "0/1", "End-LSN": "0/2"`), "WAL-Ranges[0]: no Timeline"},
		{"no start", withWAL(`"Timeline": 1, "End-LSN": "0/2"`), "WAL-Ranges[0]: no Start-LSN"},
		{"no end", withWAL(`"Timeline": 1, "Start-LSN": "0/1"`), "WAL-Ranges[0]: no End-LSN"},
		{"timeline 0", withWAL(`"Timeline": 0, "Start-LSN": "0/1", "End-LSN": "0/2"`), "Timeline is 0"},
		{"timeline too big", withWAL(`"Timeline": 4294967296, "Start-LSN": "0/1", "End-LSN": "0/2"`), "Timeline must be a JSON integer from 1 to 4294967295, found number 4294967296"},
		{"timeline as string", withWAL(`"Timeline": "1", "Start-LSN": "0/1", "End-LSN": "0/2"`), "Timeline must be a JSON integer from 1 to 4294967295, found string"},
		{"bad start LSN", withWAL(`"Timeline": 1, "Start-LSN": "0-1", "End-LSN": "0/2"`), `Start-LSN: bad WAL location "0-1"`},
		{"bad end LSN", withWAL(`"Timeline": 1, "Start-LSN": "0/1", "End-LSN": "0/x"`), `End-LSN: bad WAL location "0/x"`},
		{"end before start", withWAL(`"Timeline": 1, "Start-LSN": "0/2", "End-LSN": "0/1"`), "End-LSN 0/1 is before Start-LSN 0/2"},
		{"unknown WAL field", withWAL(`"Timeline": 1, "Start-LSN": "0/1", "End-LSN": "0/2", "Note": ""`), `WAL-Ranges[0]: json: unknown field "Note"`},

		// The manifest's own checksum.
		{"no Manifest-Checksum", []byte(hdr1 + filesArray(okFile) + strings.TrimSuffix(walRanges, ",\n") + "\n}\n"), `no "Manifest-Checksum"`},
		{"tampered size", tamper(good, `"Size": 3,`, `"Size": 4,`), "manifest checksum mismatch"},
		{"tampered file checksum", flipAfter(good, `"Checksum": "`), "manifest checksum mismatch"},
		{"tampered path", tamper(good, `"PG_VERSION"`, `"PG_VERSIOM"`), "manifest checksum mismatch"},
		{"wrong Manifest-Checksum", flipAfter(good, `"Manifest-Checksum": "`), "manifest checksum mismatch"},
		{"Manifest-Checksum too short", []byte(hdr1 + filesArray(okFile) + walRanges + "\"Manifest-Checksum\": \"abcd\"}\n"), `invalid Manifest-Checksum "abcd"`},
		{"Manifest-Checksum not hex", []byte(hdr1 + filesArray(okFile) + walRanges + "\"Manifest-Checksum\": \"" + strings.Repeat("x", 64) + "\"}\n"), "invalid Manifest-Checksum"},
		{"Manifest-Checksum upper-case hex of wrong sum", []byte(hdr1 + filesArray(okFile) + walRanges + "\"Manifest-Checksum\": \"" + strings.Repeat("AB", 32) + "\"}\n"), "manifest checksum mismatch"},
		{"Manifest-Checksum not a string", []byte(hdr1 + filesArray(okFile) + walRanges + "\"Manifest-Checksum\": 5}\n"), "Manifest-Checksum must be a string"},
		{"field after Manifest-Checksum", resign([]byte(hdr1 + filesArray(okFile) + "\"Manifest-Checksum\": \"00\",\n" + walRanges[:len(walRanges)-2] + "}\n")), `field "WAL-Ranges" after "Manifest-Checksum"`},
		{"no final newline", bytes.TrimSuffix(good, []byte("\n")), "last line is not newline-terminated"},
		{"extra blank line", append(bytes.Clone(good), '\n'), `last line does not start with "Manifest-Checksum"`},
		{"one line", sign2line(), "expected at least 2 lines"},
		{"WAL range outside the checksum", walOnLastLine(), `last line does not start with "Manifest-Checksum"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(tc.data)
			if err == nil {
				t.Fatalf("Parse succeeded: %+v\n%s", m, tc.data)
			}
			if m != nil {
				t.Errorf("Parse returned a manifest with error %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "manifest: ") {
				t.Errorf("error %q does not start with \"manifest: \"", err)
			}
		})
	}
}

// flipAfter changes the hex digit that follows the first marker in data.
func flipAfter(data []byte, marker string) []byte {
	i := bytes.Index(data, []byte(marker))
	if i < 0 {
		panic("flipAfter: no " + marker)
	}
	out := bytes.Clone(data)
	i += len(marker)
	if out[i] == '0' {
		out[i] = '1'
	} else {
		out[i] = '0'
	}
	return out
}

// walOnLastLine has its WAL range on the Manifest-Checksum line, where the
// checksum PostgreSQL defines does not cover it; the checksum itself is
// correct for the lines before.
func walOnLastLine() []byte {
	body := hdr1 + filesArray(okFile) + "\"WAL-Ranges\": [\n"
	signed := string(sign(body))
	return []byte(body + `{ "Timeline": 1, "Start-LSN": "0/1", "End-LSN": "0/2" }], ` + signed[len(body):])
}

// sign2line is a whole manifest on one line, checksum included.
func sign2line() []byte {
	return []byte(`{"PostgreSQL-Backup-Manifest-Version": 1, "Files": [], "WAL-Ranges": [{"Timeline": 1, "Start-LSN": "0/1", "End-LSN": "0/2"}], "Manifest-Checksum": "` + strings.Repeat("0", 64) + "\"}\n")
}

func TestParseErrorSaysWhere(t *testing.T) {
	data := sign(hdr1 + filesArray(okFile, `{ "Path": "base/1/1259", "Size": -5 }`) + walRanges)
	_, err := Parse(data)
	want := `manifest: Files[1] ("base/1/1259"): negative Size -5 (near byte `
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %v, want prefix %q", err, want)
	}
}

func TestParseErrorsStayShort(t *testing.T) {
	big := strings.Repeat("a", 1<<20)
	for name, data := range map[string][]byte{
		"key":      sign(hdr1 + `"` + big + "\": 1,\n" + filesArray(okFile) + walRanges),
		"path":     withFile(`"Path": "` + big + `/..", "Size": 1`),
		"checksum": withFile(`"Path": "a", "Size": 1, "Checksum-Algorithm": "CRC32C", "Checksum": "` + big + `"`),
		"LSN":      withWAL(`"Timeline": 1, "Start-LSN": "` + big + `", "End-LSN": "0/2"`),
	} {
		_, err := Parse(data)
		if err == nil || len(err.Error()) > 500 {
			t.Errorf("%s: error of %d bytes: %.300v", name, len(err.Error()), err)
		}
	}
}
