// Package health finds out whether a copied standby works: its postmaster
// (postmaster.pid and a live check), recovery and streaming as the server
// itself reports them (pg_stat_wal_receiver over its unix socket), the lag,
// and why it does not stream when it does not. It runs as the data
// directory's owner (pg-standby status runs it in a child as that user).
package health
