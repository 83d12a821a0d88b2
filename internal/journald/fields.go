package journald

import (
	"log/slog"
	"strings"
	"time"
)

// fieldPrefix starts every field of ours, so that no attribute collides with
// journald's own fields (MESSAGE, PRIORITY, CODE_*) and none starts with '_',
// which journald reserves for the fields it adds itself.
const fieldPrefix = "PG_STANDBY_"

// maxFieldName is the longest field name journald accepts; it drops fields
// with longer names (journal_field_valid in systemd).
const maxFieldName = 64

type field struct{ name, value string }

// appendAttr appends the fields of a, whose key is under prefix.
func appendAttr(fields []field, prefix string, a slog.Attr) []field {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return fields // slog.Handler: ignore an empty Attr
	}
	if a.Value.Kind() == slog.KindGroup {
		attrs := a.Value.Group()
		if a.Key != "" { // an empty key inlines the group
			prefix += groupPrefix(a.Key)
		}
		for _, g := range attrs {
			fields = appendAttr(fields, prefix, g)
		}
		return fields
	}
	return append(fields, field{name: fieldName(prefix, a.Key), value: fieldValue(a.Value)})
}

// fieldName returns the journal field for key under the group prefix.
func fieldName(prefix, key string) string {
	name := fieldPrefix + prefix + upperSnake(key)
	if len(name) > maxFieldName {
		name = name[:maxFieldName]
	}
	return strings.TrimRight(name, "_")
}

func groupPrefix(name string) string {
	if s := upperSnake(name); s != "" {
		return s + "_"
	}
	return ""
}

// upperSnake turns an attribute key into the upper-case letters, digits and
// single underscores of a journal field name: "bytes_done", "bytesDone",
// "bytes-done" and "bytes.done" all give "BYTES_DONE". Underscores do not
// start or end the result.
func upperSnake(key string) string {
	var b strings.Builder
	b.Grow(len(key) + 4)
	under := true // suppresses leading and repeated underscores
	var prev rune
	for _, c := range key {
		switch {
		case 'A' <= c && c <= 'Z':
			if 'a' <= prev && prev <= 'z' || '0' <= prev && prev <= '9' {
				b.WriteByte('_') // a camelCase boundary
			}
			b.WriteRune(c)
			under = false
		case 'a' <= c && c <= 'z':
			b.WriteRune(c - 'a' + 'A')
			under = false
		case '0' <= c && c <= '9':
			b.WriteRune(c)
			under = false
		default:
			if !under {
				b.WriteByte('_')
				under = true
			}
		}
		prev = c
	}
	return strings.TrimRight(b.String(), "_")
}

// fieldValue formats a resolved, non-group value. Journal values may hold
// any bytes, newlines included (journal.Send frames them).
func fieldValue(v slog.Value) string {
	switch v.Kind() {
	case slog.KindTime:
		return v.Time().Format(time.RFC3339Nano)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok && err != nil {
			return err.Error()
		}
	}
	return v.String()
}
