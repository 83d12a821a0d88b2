package tarstream

import (
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

const blockSize = 512

// parseHeader decodes a ustar header block as PostgreSQL's tarCreateHeader
// writes it (src/port/tar.c): octal numbers, base-256 sizes past 8 GiB,
// directories and symlinks named with a trailing slash.
func parseHeader(h *[blockSize]byte) (Member, error) {
	if err := checkSum(h); err != nil {
		return Member{}, err
	}
	name := cString(h[0:100])
	if string(h[257:262]) == "ustar" {
		if prefix := cString(h[345:500]); prefix != "" {
			name = prefix + "/" + name
		}
	}
	clean, err := cleanName(name)
	if err != nil {
		return Member{}, err
	}
	m := Member{Name: clean}
	mode, err := octal(h[100:108])
	if err != nil {
		return Member{}, fmt.Errorf("tar member %q: mode: %w", m.Name, err)
	}
	m.Mode = fs.FileMode(mode & 0o7777)
	m.Size, err = size(h[124:136])
	if err != nil {
		return Member{}, fmt.Errorf("tar member %q: size: %w", m.Name, err)
	}
	switch flag := h[156]; flag {
	case '0', 0:
		m.Type = File
	case '5':
		m.Type = Dir
	case '2':
		m.Type = Symlink
		m.Linkname = cString(h[157:257])
		if m.Linkname == "" {
			return Member{}, fmt.Errorf("tar member %q: symbolic link without a target", m.Name)
		}
	default:
		return Member{}, fmt.Errorf("tar member %q: type %q is not a file, directory or symbolic link", m.Name, flag)
	}
	if m.Type != File && m.Size != 0 {
		return Member{}, fmt.Errorf("tar member %q: a directory or link with size %d", m.Name, m.Size)
	}
	return m, nil
}

// cleanName refuses names that could leave the extraction root and returns
// the rest cleaned: PostgreSQL itself writes "./pg_wal/archive_status", and
// directories with a trailing slash.
func cleanName(name string) (string, error) {
	switch {
	case strings.HasPrefix(name, "/"):
		return "", fmt.Errorf("tar member %q: absolute path", name)
	case strings.ContainsRune(name, 0):
		return "", fmt.Errorf("tar member %q: NUL in name", name)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("tar member %q: path leaves the directory", name)
		}
	}
	clean := path.Clean(name)
	if clean == "." {
		return "", fmt.Errorf("tar member %q: empty name", name)
	}
	return clean, nil
}

func checkSum(h *[blockSize]byte) error {
	want, err := octal(h[148:156])
	if err != nil {
		return fmt.Errorf("tar header checksum: %w", err)
	}
	var sum int64
	for i, b := range h {
		if i >= 148 && i < 156 {
			b = ' '
		}
		sum += int64(b)
	}
	if sum != want {
		return fmt.Errorf("tar header checksum mismatch (stored %d, computed %d): corrupt or misaligned archive", want, sum)
	}
	return nil
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// octal reads a NUL- or space-terminated octal field.
func octal(b []byte) (int64, error) {
	s := strings.Trim(cString(b), " ")
	if s == "" {
		return 0, nil
	}
	var n int64
	for _, c := range s {
		if c < '0' || c > '7' {
			return 0, fmt.Errorf("bad octal number %q", s)
		}
		if n > (1<<62)>>3 {
			return 0, fmt.Errorf("octal number %q too large", s)
		}
		n = n<<3 | int64(c-'0')
	}
	return n, nil
}

// size reads the size field: octal, or base-256 when the high bit of the
// first byte is set (PostgreSQL's print_tar_number for files of 8 GiB+).
func size(b []byte) (int64, error) {
	if b[0]&0x80 == 0 {
		return octal(b)
	}
	if b[0]&0x40 != 0 {
		return 0, fmt.Errorf("negative size")
	}
	var n int64
	for i, c := range b {
		if i == 0 {
			c &= 0x7f
		}
		if n > (1<<62)>>8 {
			return 0, fmt.Errorf("size too large")
		}
		n = n<<8 | int64(c)
	}
	return n, nil
}
