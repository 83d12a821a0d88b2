package extract

// ForbiddenError is an archive member the extractor refuses by rule, whatever
// the local state: a symbolic link other than pg_tblspc/<oid> to a known
// tablespace.
type ForbiddenError struct{ Err error }

func (e *ForbiddenError) Error() string { return e.Err.Error() }
func (e *ForbiddenError) Unwrap() error { return e.Err }
