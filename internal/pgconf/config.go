package pgconf

import "slices"

// Config is the resolved configuration of one instance.
type Config struct {
	settings map[string]Setting // by lower-case name; the last one read wins
	dataDir  string
	files    []string
	skipped  []string
}

// Get returns the winning setting of name (case-insensitive) and whether it
// was set.
func (c *Config) Get(name string) (Setting, bool) {
	if c == nil {
		return Setting{}, false
	}
	s, ok := c.settings[lowerASCII(name)]
	return s, ok
}

// DataDir returns the data directory Load resolved: the dataDir argument if
// non-empty, else the main configuration's data_directory, else the directory
// of the main configuration file. It is the directory postgresql.auto.conf
// was read from.
func (c *Config) DataDir() string {
	if c == nil {
		return ""
	}
	return c.dataDir
}

// Files returns every file read, in reading order (for messages).
func (c *Config) Files() []string {
	if c == nil {
		return nil
	}
	return slices.Clone(c.files)
}

// Skipped returns the files that were named but absent and so not read, in
// order: include_if_exists targets and a missing postgresql.auto.conf.
// PostgreSQL logs these as "skipping missing configuration file".
func (c *Config) Skipped() []string {
	if c == nil {
		return nil
	}
	return slices.Clone(c.skipped)
}
