// Package durable makes written files survive a crash: finished files are
// fsynced off the write path, late and in batches, so one journal commit
// covers many of them (or the whole filesystem is synced once, when it
// holds nothing but this tree), and directory entries are made durable by
// fsyncing their directories.
package durable
