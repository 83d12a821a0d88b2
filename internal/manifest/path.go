package manifest

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// decodeEncodedPath decodes an "Encoded-Path": the server writes a path
// this way, as hex of its raw bytes, when the path is not valid UTF-8 (or
// when asked to with MANIFEST 'force-encode').
func decodeEncodedPath(s string) (string, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return "", fmt.Errorf("Encoded-Path %s is not hex: %w", quote(s), err)
	}
	return string(b), nil
}

var (
	errPathEmpty    = errors.New("is empty")
	errPathAbsolute = errors.New("is absolute")
	errPathNUL      = errors.New("contains a NUL byte")
	errPathDotDot   = errors.New(`has a ".." component`)
	errPathNotClean = errors.New(`has an empty or "." component`)
)

// checkPath accepts the paths the server writes: relative to the data
// directory, '/'-separated, with tablespace files as pg_tblspc/<oid>/...
// It rejects anything that could escape the target directory or name one
// file two ways ("a//b", "./a", "a/"), so that a path is a unique key.
func checkPath(p string) error {
	var err error
	switch {
	case p == "":
		err = errPathEmpty
	case p[0] == '/':
		err = errPathAbsolute
	case strings.IndexByte(p, 0) >= 0:
		err = errPathNUL
	default:
		for c := range strings.SplitSeq(p, "/") {
			if c == ".." {
				err = errPathDotDot
				break
			}
			if c == "" || c == "." {
				err = errPathNotClean
			}
		}
	}
	if err != nil {
		return fmt.Errorf("path %s %w", quote(p), err)
	}
	return nil
}
