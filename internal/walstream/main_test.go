package walstream

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
)

// TestMain fails the run when goroutines started by the tests (receivers,
// fake primaries, connections) are still running after them: it waits for
// the count to come back, up to 10 s, then prints the stacks.
func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before && code == 0 {
		buf := make([]byte, 1<<20)
		fmt.Fprintf(os.Stderr, "walstream tests: %d goroutines left, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
		code = 1
	}
	os.Exit(code)
}
