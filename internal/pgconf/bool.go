package pgconf

import (
	"fmt"
	"strings"
)

// ParseBool reads a boolean setting as PostgreSQL's parse_bool does: any
// case, true/false/yes/no and their unique prefixes, on/off (at least "of"
// for off), 1/0.
func ParseBool(v string) (bool, error) {
	s := strings.ToLower(v)
	prefix := func(word string, min int) bool { return len(s) >= min && strings.HasPrefix(word, s) }
	switch {
	case prefix("true", 1), prefix("yes", 1), s == "on", s == "1":
		return true, nil
	case prefix("false", 1), prefix("no", 1), prefix("off", 2), s == "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (on or off)", v)
}
