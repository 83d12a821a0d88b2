package manifest

// manifestChecksumKey starts the manifest's last line.
const manifestChecksumKey = `"Manifest-Checksum"`
