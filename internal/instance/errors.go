package instance

import "fmt"

// RefusedError says why pg-standby will not touch a directory, and what to do.
type RefusedError struct {
	Dir    string
	Reason string
	Hint   string
}

func (e *RefusedError) Error() string {
	s := fmt.Sprintf("refusing data directory %s: %s", e.Dir, e.Reason)
	if e.Hint != "" {
		s += "; " + e.Hint
	}
	return s
}
