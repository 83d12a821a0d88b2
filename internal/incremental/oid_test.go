package incremental

import "testing"

// TestIsOID: the one rule for names postgres writes as OIDs, shared by
// Listable, PriorFiles and the resync's pg_tblspc scan.
func TestIsOID(t *testing.T) {
	for s, want := range map[string]bool{
		"1": true, "16384": true, "4294967295": true,
		"": false, "0": false, "0123": false, "+5": false, "-5": false, " 5": false, "5 ": false,
		"notes": false, "16384.1": false, "4294967296": false, "9999999999": false, "12345678901": false,
	} {
		if got := IsOID(s); got != want {
			t.Errorf("IsOID(%q) = %v, want %v", s, got, want)
		}
	}
}
