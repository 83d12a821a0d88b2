package tarstream

// FormatError is an archive that breaks the tar format or the rules of a
// base backup archive (a name leaving the root, a type other than file,
// directory or link, a bad header checksum). A stream cut short is not one:
// Close reports truncation as a plain error.
type FormatError struct{ Err error }

func (e *FormatError) Error() string { return e.Err.Error() }
func (e *FormatError) Unwrap() error { return e.Err }
