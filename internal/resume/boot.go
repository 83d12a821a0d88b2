package resume

import (
	"bytes"
	"io"
	"os"
	"sync"
)

// bootIDFile is the kernel's random ID of the running boot: a new one every
// boot, so records of an earlier boot never match it (random(4)).
const bootIDFile = "/proc/sys/kernel/random/boot_id"

// BootID is the running boot's ID, or "" when the kernel does not say: then
// nothing may be recorded Written. It cannot change while a process runs,
// so it is read once.
var BootID = sync.OnceValue(readBootID)

func readBootID() string {
	f, err := os.Open(bootIDFile)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64))
	if err != nil {
		return ""
	}
	id := string(bytes.TrimSpace(b))
	if len(id) < 16 || len(id) >= 64 {
		return ""
	}
	return id
}
