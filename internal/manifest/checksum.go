package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// manifestChecksumKey starts the manifest's last line.
const manifestChecksumKey = `"Manifest-Checksum"`

// verifyManifestChecksum checks the "Manifest-Checksum" value want against
// data. The server (SendBackupManifest) hashes with SHA-256 every byte it
// writes before the "Manifest-Checksum" field, and then writes that field on
// a line of its own, which ends the document:
//
//	"Manifest-Checksum": "<64 hex digits>"}\n
//
// So, as in parse_manifest.c's verify_manifest_checksum, the document must
// end with a newline and have at least two lines, and the hash covers
// everything up to and including the second-to-last newline. This package
// also requires that last line to hold the checksum field and nothing else
// before it, so no other part of the manifest escapes the checksum.
func verifyManifestChecksum(data []byte, want string) error {
	if len(data) == 0 || data[len(data)-1] != '\n' {
		return errors.New("last line is not newline-terminated")
	}
	cut := bytes.LastIndexByte(data[:len(data)-1], '\n')
	if cut < 0 {
		return errors.New("expected at least 2 lines")
	}
	last := bytes.TrimLeft(data[cut+1:], " \t\r")
	if !bytes.HasPrefix(last, []byte(manifestChecksumKey)) {
		return fmt.Errorf("last line does not start with %s", manifestChecksumKey)
	}
	wantSum, err := hex.DecodeString(want)
	if err != nil || len(wantSum) != sha256.Size {
		return fmt.Errorf("invalid Manifest-Checksum %s: want %d hex digits", quote(want), 2*sha256.Size)
	}
	got := sha256.Sum256(data[:cut+1])
	if !bytes.Equal(got[:], wantSum) {
		return fmt.Errorf("manifest checksum mismatch: Manifest-Checksum is %s, content hashes to %x", want, got)
	}
	return nil
}
