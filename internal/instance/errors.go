package instance

import "fmt"

// RefusedError says why pg-standby will not touch a directory, and what to do.
type RefusedError struct {
	// What Dir is: "data directory" when empty.
	What   string
	Dir    string
	Reason string
	Hint   string
}

func (e *RefusedError) Error() string {
	what := e.What
	if what == "" {
		what = "data directory"
	}
	s := fmt.Sprintf("refusing %s %s: %s", what, e.Dir, e.Reason)
	if e.Hint != "" {
		s += "; " + e.Hint
	}
	return s
}
