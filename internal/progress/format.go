package progress

import (
	"fmt"
	"time"
)

// Bytes formats a byte count in binary units with one decimal, like "12.3 GiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// Line is the short human status of a snapshot, as systemctl status shows it:
// "copying 12.3 of 40.1 GiB (30%), 250.0 MiB/s, 2m10s left".
func (s Snapshot) Line() string {
	line := s.line()
	if s.Kind != "" {
		line = s.Kind + "; " + line
	}
	if s.Attempt > 1 {
		line = fmt.Sprintf("attempt %d: %s", s.Attempt, line)
	}
	return line
}

func (s Snapshot) line() string {
	if s.Phase != Copying {
		return string(s.Phase)
	}
	line := fmt.Sprintf("copying %s", Bytes(s.Streamed))
	if f, ok := s.Fraction(); ok {
		line = fmt.Sprintf("copying %s of %s (%d%%)", Bytes(s.Streamed), Bytes(s.Total), int(f*100))
	}
	if secs := s.Elapsed.Seconds(); secs > 1 && s.Streamed > 0 {
		rate := float64(s.Streamed) / secs
		line += fmt.Sprintf(", %s/s", Bytes(int64(rate)))
		if left := s.Total - s.Streamed; s.Total > 0 && left > 0 {
			line += fmt.Sprintf(", %s left", time.Duration(float64(left)/rate*float64(time.Second)).Round(time.Second))
		}
	}
	return line
}
