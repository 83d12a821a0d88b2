// Package redact removes passwords from libpq connection strings and from
// text that may quote one (error messages, log lines), before they reach the
// journal, D-Bus, STATUS= or a file others can read.
//
// libpq accepts two conninfo forms (libpq's conninfo_parse and
// conninfo_uri_parse_options, fe-connect.c): keyword = value pairs, with
// optional blanks around '=', values single-quoted with backslash escapes or
// bare with backslash escapes; and URIs postgresql://user:password@host/db
// ?password=...&sslpassword=.... Both password and sslpassword (the client
// key's passphrase) are secrets.
package redact
