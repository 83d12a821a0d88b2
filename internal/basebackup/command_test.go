package basebackup

import "testing"

func TestCommand(t *testing.T) {
	got, err := Options{Label: "it's", Checkpoint: "fast", ManifestChecksums: "SHA256", MaxRateKB: 32, Compression: "zstd", CompressionDetail: "level=3"}.Command()
	want := "BASE_BACKUP (LABEL 'it''s', PROGRESS, WAIT false, MANIFEST 'yes', TARGET 'client', CHECKPOINT 'fast', MANIFEST_CHECKSUMS 'SHA256', MAX_RATE 32, COMPRESSION 'zstd', COMPRESSION_DETAIL 'level=3')"
	if err != nil || got != want {
		t.Errorf("Command() = %q, %v\nwant %q", got, err, want)
	}
	if got, err := (Options{Label: "x"}).Command(); err != nil || got != "BASE_BACKUP (LABEL 'x', PROGRESS, WAIT false, MANIFEST 'yes', TARGET 'client', CHECKPOINT 'spread')" {
		t.Errorf("Command() with defaults = %q, %v", got, err)
	}
	if got, err := (Options{Label: "x", Incremental: true}).Command(); err != nil || got != "BASE_BACKUP (LABEL 'x', PROGRESS, WAIT false, MANIFEST 'yes', TARGET 'client', CHECKPOINT 'spread', INCREMENTAL)" {
		t.Errorf("Command() incremental = %q, %v", got, err)
	}
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Checkpoint: "now"}, `checkpoint mode "now": want fast or spread`},
		{Options{MaxRateKB: 31}, "max rate 31 kB/s out of range: want 32 to 1048576 kB/s (32 kB/s to 1 GB/s)"},
		{Options{MaxRateKB: 1048577}, "max rate 1048577 kB/s out of range: want 32 to 1048576 kB/s (32 kB/s to 1 GB/s)"},
	} {
		if _, err := tc.o.Command(); err == nil || err.Error() != tc.want {
			t.Errorf("Command(%+v) = %v, want %s", tc.o, err, tc.want)
		}
	}
}
