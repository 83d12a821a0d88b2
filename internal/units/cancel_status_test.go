package units

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestStopNote runs the backup unit's ExecStopPost= command as systemd
// would (its $$ and %i resolved, /run/pg-standby moved to a temporary
// directory): the stop note is left for a stop by SIGTERM and for Cancel()
// (exit 80), never for a success or a failure.
func TestStopNote(t *testing.T) {
	posts := values(parseUnit(t, "pg-standby@.service"), "Service", "ExecStopPost")
	if len(posts) != 1 || !strings.HasPrefix(posts[0], "+/bin/sh -c '") {
		t.Fatalf("ExecStopPost = %q", posts)
	}
	script := strings.TrimSuffix(strings.TrimPrefix(posts[0], "+/bin/sh -c '"), "'")
	for _, tt := range []struct {
		code, status string
		note         bool
	}{
		{"killed", "TERM", true}, {"exited", "80", true},
		{"exited", "0", false}, {"exited", "1", false}, {"exited", "78", false}, {"killed", "KILL", false},
	} {
		run := filepath.Join(t.TempDir(), "run")
		cmd := strings.NewReplacer("$$", "$", "%i", "15-main", "/run/pg-standby", run).Replace(script)
		sh := exec.Command("/bin/sh", "-c", cmd)
		sh.Env = []string{"EXIT_CODE=" + tt.code, "EXIT_STATUS=" + tt.status}
		if out, err := sh.CombinedOutput(); err != nil {
			t.Fatalf("%s/%s: %v\n%s", tt.code, tt.status, err, out)
		}
		_, err := os.Stat(filepath.Join(run, "15-main.stopped"))
		if got := err == nil; got != tt.note {
			t.Errorf("%s/%s: note %v, want %v", tt.code, tt.status, got, tt.note)
		}
	}
}
