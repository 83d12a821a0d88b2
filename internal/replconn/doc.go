// Package replconn opens physical replication connections and runs the
// simple replication commands (IDENTIFY_SYSTEM, SHOW, slot commands) on them.
// The streaming commands live with their streams (basebackup, walstream).
package replconn
