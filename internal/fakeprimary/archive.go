package fakeprimary

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/pg-standby/pg-standby/internal/manifest"
	"github.com/pg-standby/pg-standby/internal/wal"
)

// Entry is one tar member as the server writes it, or as a hostile one might.
type Entry struct {
	Name string
	// Type is the ustar type flag: '0' file, '5' directory, '2' symlink,
	// '1' hard link, '3'/'4' devices, '6' FIFO; 0 means '0'.
	Type     byte
	Linkname string
	Mode     int64 // default 0600 (0700 for directories)
	Data     string
	// SizeField, if set, is written as the raw 12-byte size field instead
	// of len(Data) in octal (base-256 or negative sizes).
	SizeField []byte
	// Size, if non-zero, is written as the size instead of len(Data).
	Size int64
}

// Tar renders entries as a ustar archive, with the two zero blocks at the end
// unless unterminated.
func Tar(entries []Entry, unterminated bool) []byte {
	var b bytes.Buffer
	for _, e := range entries {
		var h [512]byte
		name := e.Name
		if len(name) > 100 {
			// Split at a '/' into prefix and name, as ustar does.
			i := strings.LastIndexByte(name[:min(len(name), 156)], '/')
			copy(h[345:500], name[:i])
			name = name[i+1:]
		}
		copy(h[0:100], name)
		typ := e.Type
		if typ == 0 {
			typ = '0'
		}
		mode := e.Mode
		if mode == 0 {
			mode = 0o600
			if typ == '5' {
				mode = 0o700
			}
		}
		octal(h[100:108], mode)
		octal(h[108:116], 0)
		octal(h[116:124], 0)
		size := int64(len(e.Data))
		if e.Size != 0 {
			size = e.Size
		}
		if e.SizeField != nil {
			copy(h[124:136], e.SizeField)
		} else {
			octal(h[124:136], size)
		}
		octal(h[136:148], 1700000000)
		h[156] = typ
		copy(h[157:257], e.Linkname)
		copy(h[257:263], "ustar\x00")
		copy(h[263:265], "00")
		for i := 148; i < 156; i++ {
			h[i] = ' '
		}
		var sum int64
		for _, c := range h {
			sum += int64(c)
		}
		copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
		b.Write(h[:])
		b.WriteString(e.Data)
		if pad := (512 - len(e.Data)%512) % 512; pad > 0 {
			b.Write(make([]byte, pad))
		}
	}
	if !unterminated {
		b.Write(make([]byte, 1024))
	}
	return b.Bytes()
}

func octal(dst []byte, n int64) {
	s := fmt.Sprintf("%0*o", len(dst)-1, n)
	copy(dst, s)
	dst[len(dst)-1] = 0
}

// NewArchive is an 'n' payload.
func NewArchive(name, location string) []byte {
	return append(append(append([]byte{'n'}, name...), 0), append([]byte(location), 0)...)
}

// Data is a 'd' payload.
func Data(p []byte) []byte { return append([]byte{'d'}, p...) }

// ManifestStart is the 'm' payload.
func ManifestStart() []byte { return []byte{'m'} }

// Progress is a 'p' payload.
func Progress(n int64) []byte {
	p := []byte{'p', 0, 0, 0, 0, 0, 0, 0, 0}
	for i := 8; i >= 1; i-- {
		p[i] = byte(n)
		n >>= 8
	}
	return p
}

// Archive is an 'n' message followed by the archive in 'd' chunks of at most
// chunk bytes (PostgreSQL sends 32 kB).
func Archive(name, location string, tar []byte, chunk int) [][]byte {
	out := [][]byte{NewArchive(name, location)}
	for len(tar) > 0 {
		n := min(chunk, len(tar))
		out = append(out, Data(tar[:n]))
		tar = tar[n:]
	}
	return out
}

// Manifest is the 'm' message followed by doc in one 'd' message.
func Manifest(doc []byte) [][]byte { return [][]byte{ManifestStart(), Data(doc)} }

// ManifestFile is one file a manifest lists.
type ManifestFile struct {
	Path string
	Data string
}

// RenderManifest writes a version 1 manifest with CRC32C checksums, signed
// as the server signs it, for the files and the WAL range start..end of tli.
func RenderManifest(files []ManifestFile, tli uint32, start, end wal.LSN) []byte {
	var b strings.Builder
	b.WriteString("{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [")
	for i, f := range files {
		if i > 0 {
			b.WriteString(",")
		}
		h := manifest.CRC32C.NewHash()
		h.Write([]byte(f.Data))
		fmt.Fprintf(&b, "\n{ \"Path\": %q, \"Size\": %d, \"Last-Modified\": \"2024-05-06 07:08:09 GMT\", \"Checksum-Algorithm\": \"CRC32C\", \"Checksum\": \"%s\" }",
			f.Path, len(f.Data), hex.EncodeToString(h.Sum(nil)))
	}
	b.WriteString("\n],\n\"WAL-Ranges\": [\n")
	fmt.Fprintf(&b, "{ \"Timeline\": %d, \"Start-LSN\": \"%s\", \"End-LSN\": \"%s\" }", tli, start, end)
	b.WriteString("\n],\n")
	body := b.String()
	sum := sha256.Sum256([]byte(body))
	return []byte(body + "\"Manifest-Checksum\": \"" + hex.EncodeToString(sum[:]) + "\"}\n")
}
