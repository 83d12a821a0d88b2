#!/usr/bin/env bash
# The embedded default: a throwaway local primary with pgbench data (and
# pgbench writing during the backup), a minimal pg-standby instance, the
# backup, the standby started, and a row written on the primary afterwards
# read back from the standby. Everything lives in one temporary directory
# and is stopped and removed at the end (KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
SCALE=${DEMO_SCALE:-10}
PPORT=${DEMO_PORT:-55432}
# A port pair nothing listens on: another local cluster must not stop the demo.
in_use() { ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }
if [ -z "${DEMO_PORT:-}" ]; then
  while in_use "$PPORT" || in_use $((PPORT + 1)); do PPORT=$((PPORT + 2)); done
fi
SPORT=$((PPORT + 1))

as_pg=()
if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); fi
W=$(mktemp -d /tmp/pg-standby-demo.XXXXXX)
chmod 755 "$W"
[ ${#as_pg[@]} -gt 0 ] && chown postgres: "$W"
# The checkout may sit where postgres cannot reach (a 0700 home or temp dir).
install -m 755 bin/pg-standby "$W/pg-standby"
PGS=$W/pg-standby
cd "$W"

cleanup() {
  "${as_pg[@]}" "$BIN/pg_ctl" -D "$W/standby" -m fast -w stop >/dev/null 2>&1 || true
  "${as_pg[@]}" "$BIN/pg_ctl" -D "$W/primary" -m fast -w stop >/dev/null 2>&1 || true
  if [ -z "${KEEP:-}" ]; then rm -rf "$W"; else echo "kept $W"; fi
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }
psql_p() { "${as_pg[@]}" psql -X -h "$W" -p "$PPORT" -d postgres -Atq "$@"; }
psql_s() { "${as_pg[@]}" psql -X -h "$W" -p "$SPORT" -d postgres -Atq "$@"; }

step "primary: initdb, start on port $PPORT, pgbench scale $SCALE"
"${as_pg[@]}" "$BIN/initdb" -D "$W/primary" --data-checksums -A trust -U postgres >/dev/null
cat >> "$W/primary/postgresql.conf" <<CONF
port = $PPORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$W'
wal_level = replica
max_wal_senders = 10
CONF
echo "host replication replicator 127.0.0.1/32 scram-sha-256" >> "$W/primary/pg_hba.conf"
"${as_pg[@]}" "$BIN/pg_ctl" -D "$W/primary" -l "$W/primary.log" -w start >/dev/null
psql_p -c "CREATE ROLE replicator LOGIN REPLICATION PASSWORD 'demo-secret'"
"${as_pg[@]}" "$BIN/pgbench" -h "$W" -p "$PPORT" -i -s "$SCALE" -q postgres 2>&1 | tail -n 1

step "minimal instance: postgresql.conf with primary_conninfo, and basebackup.signal"
mkdir -m 700 "$W/standby"
cat > "$W/standby/postgresql.conf" <<CONF
primary_conninfo = 'host=127.0.0.1 port=$PPORT user=replicator password=demo-secret application_name=demo-standby'
port = $SPORT
listen_addresses = ''
unix_socket_directories = '$W'
CONF
touch "$W/standby/basebackup.signal"
[ ${#as_pg[@]} -gt 0 ] && chown -R postgres: "$W/standby"
ls -l "$W/standby"

step "pg-standby run (pgbench writing on the primary meanwhile)"
"${as_pg[@]}" "$BIN/pgbench" -h "$W" -p "$PPORT" -c 2 -T 600 -n postgres >/dev/null 2>&1 &
LOAD=$!
start=$(date +%s.%N)
"${as_pg[@]}" "$PGS" run --pgdata "$W/standby"
end=$(date +%s.%N)
kill "$LOAD" 2>/dev/null; wait "$LOAD" 2>/dev/null || true
awk -v a="$start" -v b="$end" 'BEGIN { printf "backup took %.1f s\n", b - a }'
"${as_pg[@]}" "$BIN/pg_verifybackup" -q -i postgresql.conf -i pg_hba.conf -i pg_ident.conf "$W/standby" && echo "pg_verifybackup: backup successfully verified"

step "start the standby, write on the primary, read it on the standby"
"${as_pg[@]}" "$BIN/pg_ctl" -D "$W/standby" -l "$W/standby.log" -w start >/dev/null
psql_p -c "CREATE TABLE demo_marker AS SELECT 'written after the backup at ' || now() AS note"
for _ in $(seq 100); do
  note=$(psql_s -c "SELECT note FROM demo_marker" 2>/dev/null || true)
  [ -n "$note" ] && break
  sleep 0.1
done
if [ -z "$note" ]; then echo "the standby did not replay the marker row" >&2; tail -20 "$W/standby.log" >&2; exit 1; fi
echo "standby in recovery: $(psql_s -c 'SELECT pg_is_in_recovery()')"
echo "standby reads: $note"
echo "primary sees: $(psql_p -c "SELECT application_name || ' ' || state FROM pg_stat_replication")"
echo
echo "OK: the standby replicates."
