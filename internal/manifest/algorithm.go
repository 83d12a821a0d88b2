package manifest

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc32"
	"strings"
)

// Algorithm is a per-file checksum algorithm of a backup manifest
// (PostgreSQL's pg_checksum_type in src/common/checksum_helper.c).
type Algorithm int

// The algorithms PostgreSQL knows. None means the manifest entry has no
// "Checksum-Algorithm" and no "Checksum".
const (
	None Algorithm = iota
	CRC32C
	SHA224
	SHA256
	SHA384
	SHA512
)

var algorithmNames = [...]string{
	None:   "NONE",
	CRC32C: "CRC32C",
	SHA224: "SHA224",
	SHA256: "SHA256",
	SHA384: "SHA384",
	SHA512: "SHA512",
}

// ParseAlgorithm maps a name to an Algorithm. Like pg_checksum_parse_type,
// it ignores case, so it accepts both the manifest's "Checksum-Algorithm"
// values and the MANIFEST_CHECKSUMS option's spelling.
func ParseAlgorithm(name string) (Algorithm, error) {
	for a, n := range algorithmNames {
		if strings.EqualFold(name, n) {
			return Algorithm(a), nil
		}
	}
	return None, fmt.Errorf("unknown checksum algorithm %s", quote(name))
}

// String returns the canonical upper-case name, as pg_checksum_type_name
// does and as the server writes it in the manifest.
func (a Algorithm) String() string {
	if a < 0 || int(a) >= len(algorithmNames) {
		return fmt.Sprintf("Algorithm(%d)", int(a))
	}
	return algorithmNames[a]
}

// Size is the length in bytes of a's checksum: the number of bytes the
// manifest's "Checksum" hex string encodes (0 for None and unknown values).
func (a Algorithm) Size() int {
	switch a {
	case CRC32C:
		return 4
	case SHA224:
		return sha256.Size224
	case SHA256:
		return sha256.Size
	case SHA384:
		return sha512.Size384
	case SHA512:
		return sha512.Size
	}
	return 0
}

// NewHash returns a hash whose Sum bytes are exactly what the manifest's
// "Checksum" encodes in hex. For the SHA-2 algorithms that is the digest.
// For CRC32C it is the CRC-32C (Castagnoli) value as pg_checksum_final
// stores it: a memcpy of the finished uint32, so in the server's native byte
// order. This package assumes the server shares this host's byte order,
// which is what pg_verifybackup effectively assumes too. NewHash returns nil
// for None and unknown values.
func (a Algorithm) NewHash() hash.Hash {
	switch a {
	case CRC32C:
		return &crc32cHash{crc: crc32.New(castagnoli)}
	case SHA224:
		return sha256.New224()
	case SHA256:
		return sha256.New()
	case SHA384:
		return sha512.New384()
	case SHA512:
		return sha512.New()
	}
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32cHash is CRC-32C whose Sum appends the value in native byte order,
// where hash/crc32 would append it big-endian.
type crc32cHash struct{ crc hash.Hash32 }

func (h *crc32cHash) Write(p []byte) (int, error) { return h.crc.Write(p) }
func (h *crc32cHash) Reset()                      { h.crc.Reset() }
func (h *crc32cHash) Size() int                   { return 4 }
func (h *crc32cHash) BlockSize() int              { return 1 }
func (h *crc32cHash) Sum(b []byte) []byte {
	return binary.NativeEndian.AppendUint32(b, h.crc.Sum32())
}
