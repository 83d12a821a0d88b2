package pgconf

import "testing"

func TestParseBool(t *testing.T) {
	for _, v := range []string{"on", "ON", "true", "t", "Tr", "yes", "y", "1"} {
		if b, err := ParseBool(v); err != nil || !b {
			t.Errorf("ParseBool(%q) = %v, %v; want true", v, b, err)
		}
	}
	for _, v := range []string{"off", "of", "OFF", "false", "f", "no", "n", "0"} {
		if b, err := ParseBool(v); err != nil || b {
			t.Errorf("ParseBool(%q) = %v, %v; want false", v, b, err)
		}
	}
	// "o" is on or off; the rest are not booleans to PostgreSQL either.
	for _, v := range []string{"", "o", "onn", "truee", "2", "sometimes"} {
		if _, err := ParseBool(v); err == nil {
			t.Errorf("ParseBool(%q) accepted", v)
		}
	}
}
