// Package durable makes written files survive a crash: a small pool of
// workers fsyncs and closes finished files while the stream goes on, and
// directory entries are made durable by fsyncing their directories.
package durable
