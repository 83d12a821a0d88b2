#!/usr/bin/env bash
# The end-to-end scenario, run INSIDE the booted container (systemd as PID 1)
# by scripts/e2e/run.sh, with the package under test in /opt/payload. Prints
# one line per named check (PASS/FAIL/SKIP), TIME lines per phase and INFO
# lines; on a failure the relevant journal follows the FAIL line. The last
# line is "SCENARIO DONE" when it ran to the end.
#
# Env: PGV    the PostgreSQL major version installed in the image (15)
#      SCALE  pgbench scale of the primary (10: ~160 MB)
set -u
PGV=${PGV:-15}
SCALE=${SCALE:-10}
P=/opt/payload
export SYSTEMD_PAGER= SYSTEMD_COLORS=0 LC_ALL=C.UTF-8
PRIMARY="host=127.0.0.1 port=5432 user=replicator"
SECRET=e2e-secret

# --- helpers -------------------------------------------------------------------
now() { date +%s.%N; }
T_PHASE=$(now)
phase() { # phase NAME: ends the running phase's clock, starts the next
	local t
	t=$(now)
	[[ -n ${PHASE:-} ]] && awk -v a="$T_PHASE" -v b="$t" -v n="$PHASE" 'BEGIN{printf "TIME %-44s %6.1fs\n", n, b-a}'
	PHASE=$1 T_PHASE=$t
	[[ -n $1 ]] && printf '\n== %s\n' "$1"
	return 0
}
UNITS=() # units whose journal explains a failure in the current phase
journal() {
	local args=() u
	for u in "${UNITS[@]}"; do args+=(-u "$u"); done
	((${#args[@]})) || return 0
	journalctl -q --no-pager -n 25 -o short-monotonic "${args[@]}" 2>&1 | sed 's/^/      | /'
}
pass() { echo "PASS  $1${2:+  ($2)}"; }
fail() {
	echo "FAIL  $1${2:+  ($2)}"
	journal
}
skip() { echo "SKIP  $1  ($2)"; }
info() { echo "INFO  $*"; }
check() { # check NAME COMMAND...: PASS when the command succeeds
	local name=$1
	shift
	if "$@" >/dev/null 2>&1; then pass "$name"; else fail "$name"; fi
}
wait_for() { # wait_for SECONDS COMMAND...: poll every 0.2 s
	local end=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		((SECONDS >= end)) && return 1
		sleep 0.2
	done
}
prop() { systemctl show -p "$2" --value "$1"; }
is() { [[ $(prop "$1" "$2") == "$3" ]]; }
psql_p() { runuser -u postgres -- psql -X -Atq -p 5432 -d postgres -c "$1"; }
psql_s() { runuser -u postgres -- psql -X -Atq -p "$1" -d postgres -c "$2"; }
port_of() { sed -n "s/^port *= *\([0-9]*\).*/\1/p" "/etc/postgresql/$PGV/$1/postgresql.conf" | tail -n1; }
lsc() { pg_lsclusters --no-header | awk -v v="$PGV" -v n="$1" '$1 == v && $2 == n {print $4}'; }
percent() { sed -n 's/.*(\([0-9]*\)%).*/\1/p' <<<"$1"; }
# systemd's bus_label_escape: every byte but [A-Za-z0-9] as _xx.
bus_label() {
	local s=$1 out= c h i
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		if [[ $c == [A-Za-z0-9] ]]; then out+=$c; else
			printf -v h '_%02x' "'$c"
			out+=$h
		fi
	done
	echo "$out"
}

# --- 0. install ----------------------------------------------------------------
phase "0. install the package (dpkg -i)"
UNITS=(dbus.service)
DEB=$(ls "$P"/*.deb)
info "package: ${DEB##*/}"
T0=$(date '+%Y-%m-%d %H:%M:%S')
if out=$(dpkg -i "$DEB" 2>&1); then pass "dpkg -i"; else
	fail "dpkg -i"
	echo "$out" | sed 's/^/      | /'
fi
check "pg-standby version runs" pg-standby version
info "$(pg-standby version 2>&1)"
check "postinst ran daemon-reload (drop-in active on the running postgresql@$PGV-main)" \
	bash -c "systemctl show -p DropInPaths --value postgresql@$PGV-main | grep -q pg-standby.conf &&
	         [[ \$(systemctl show -p NeedDaemonReload --value postgresql@$PGV-main) == no ]]"
check "postinst asked dbus-daemon to ReloadConfig" \
	bash -c "journalctl -q --no-pager -u dbus --since '$T0' | grep -q 'Reloaded configuration'"
check "nothing enabled or started by the package" \
	bash -c "! systemctl list-units --state=active,activating --plain --no-legend 'pg-standby*' | grep -q . &&
	         ! systemctl list-unit-files --plain --no-legend 'pg-standby*' | awk '\$2 == \"enabled\"' | grep -q ."
info "$(systemctl list-unit-files --plain --no-legend 'pg-standby*' | tr -s ' ' | tr '\n' ';')"
check "units, drop-in, D-Bus policy, man page, completion installed" \
	test -f /usr/lib/systemd/system/pg-standby@.service -a \
	-f /usr/lib/systemd/system/pg-standby-postgres@.service -a \
	-f /usr/lib/systemd/system/postgresql@.service.d/pg-standby.conf -a \
	-f /usr/share/dbus-1/system.d/pg-standby.conf -a \
	-f /usr/share/man/man8/pg-standby.8.gz -a \
	-f /usr/share/bash-completion/completions/pg-standby
check "reinstall (the upgrade path of the maintainer scripts)" dpkg -i "$DEB"

# --- 1. primary ----------------------------------------------------------------
phase "1. primary $PGV-main with pgbench data and load"
UNITS=("postgresql@$PGV-main.service")
wait_for 30 is "postgresql@$PGV-main" ActiveState active
psql_p "CREATE ROLE replicator LOGIN REPLICATION PASSWORD '$SECRET'" >/dev/null
runuser -u postgres -- pgbench -q -i -s "$SCALE" postgres >/dev/null 2>&1
rows=$(psql_p "SELECT count(*) FROM pgbench_accounts" 2>/dev/null)
if [[ $rows == $((SCALE * 100000)) ]]; then pass "primary has pgbench data" "$rows rows, $(psql_p "SELECT pg_size_pretty(pg_database_size('postgres'))")"; else fail "primary has pgbench data" "rows=$rows"; fi
runuser -u postgres -- pgbench -n -c 2 -R 200 -T 900 postgres >/dev/null 2>&1 &
LOAD=$!
trap 'kill $LOAD 2>/dev/null' EXIT
check "pgbench load running on the primary" kill -0 $LOAD
# The password lives where libpq (and the later walreceiver) looks for it.
echo "127.0.0.1:5432:*:replicator:$SECRET" >/var/lib/postgresql/.pgpass
chown postgres: /var/lib/postgresql/.pgpass
chmod 600 /var/lib/postgresql/.pgpass

# --- 2. init -------------------------------------------------------------------
phase "2. pg-standby init $PGV-standby"
# Throttled, so that progress, a kill and a retry can be watched.
# (Options first: the Go flag parser of this build stops at INSTANCE. init runs
# as root: --check finds the password through PGPASSFILE.)
if out=$(PGPASSFILE=/var/lib/postgresql/.pgpass pg-standby init --primary-conninfo "$PRIMARY application_name=e2e-standby" --max-rate 16384 --check "$PGV-standby" 2>&1); then
	pass "pg-standby init $PGV-standby --check"
else
	fail "pg-standby init $PGV-standby --check" "$out"
fi
check "pg_lsclusters lists $PGV-standby (down)" bash -c "[[ \$(pg_lsclusters --no-header | awk '\$2==\"standby\"{print \$4}') == down ]]"
DATA=/var/lib/postgresql/$PGV/standby
check "minimal instance: basebackup.signal, no PG_VERSION" test -f "$DATA/basebackup.signal" -a ! -e "$DATA/PG_VERSION"

# --- 3. the backup under systemd -------------------------------------------------
phase "3. systemctl start --no-block pg-standby@$PGV-standby: progress"
U=pg-standby@$PGV-standby.service
UNITS=("$U" "postgresql@$PGV-standby.service")
systemctl start --no-block "$U"
# What automation does next (docs/ansible.md): wait, through the kill and restart below.
WAIT_OUT=$(mktemp)
pg-standby wait "$PGV-standby" --timeout 300s >"$WAIT_OUT" 2>&1 &
WAIT_PID=$!
seen=() last=-1 grew=0
end=$((SECONDS + 60))
while ((SECONDS < end)); do
	st=$(prop "$U" StatusText)
	p=$(percent "$st")
	if [[ -n $p ]] && ((p != last)); then
		seen+=("$p%")
		((last >= 0 && p > last)) && grew=$((grew + 1))
		last=$p
	fi
	((grew >= 2 && p >= 25)) && break
	sleep 0.3
done
info "StatusText: $st"
if ((grew >= 2)); then pass "StatusText shows growing progress" "${seen[*]}"; else fail "StatusText shows growing progress" "seen: ${seen[*]:-none}, last: $st"; fi
json=$(journalctl -q --no-pager -u "$U" -o json --output-fields=PG_STANDBY_INSTANCE,PG_STANDBY_PHASE,PG_STANDBY_BYTES_DONE,PG_STANDBY_BYTES_TOTAL,PG_STANDBY_ATTEMPT | grep PG_STANDBY_BYTES_DONE | tail -n1)
if grep -q "\"PG_STANDBY_INSTANCE\":\"$PGV-standby\"" <<<"$json" && grep -q '"PG_STANDBY_PHASE"' <<<"$json" && grep -q '"PG_STANDBY_BYTES_TOTAL"' <<<"$json"; then
	pass "journal has the structured fields" "$(grep -o '"PG_STANDBY_[A-Z_]*":"[^"]*"' <<<"$json" | tr '\n' ' ')"
else
	fail "journal has the structured fields" "${json:-no PG_STANDBY_BYTES_DONE record}"
fi
check "a temporary replication slot holds the backup's WAL on the primary" \
	bash -c "[[ \$(runuser -u postgres -- psql -X -Atq -p 5432 -d postgres -c 'SELECT count(*) FROM pg_replication_slots WHERE temporary') -ge 1 ]]"
# D-Bus: only once the worker publishes (issue 4).
if ! pg-standby status --help 2>&1 | grep -q 'unknown command'; then
	label=$(bus_label "$DATA")
	name=org.pgstandby.Standby1.$label path=/org/pgstandby/Standby1/job/$label
	if wait_for 5 bash -c "busctl --system list --no-legend | grep -q '^$name '"; then
		b1=$(busctl --system get-property "$name" "$path" org.pgstandby.Standby1.Job BytesDone 2>&1)
		sleep 1.5
		b2=$(busctl --system get-property "$name" "$path" org.pgstandby.Standby1.Job BytesDone 2>&1)
		ph=$(busctl --system get-property "$name" "$path" org.pgstandby.Standby1.Job Phase 2>&1)
		if [[ ${b1#t } =~ ^[0-9]+$ && ${b2#t } =~ ^[0-9]+$ ]] && ((${b2#t } > ${b1#t })); then
			pass "busctl: the job object has live properties" "Phase ${ph#s }, BytesDone ${b1#t } -> ${b2#t }"
		else
			fail "busctl: the job object has live properties" "BytesDone '$b1' -> '$b2'"
		fi
	else
		fail "busctl: the worker's bus name is on the system bus" "$name"
	fi
else
	skip "busctl: D-Bus object with live properties" "this build has no 'pg-standby status': the D-Bus worker has not landed"
fi

# --- 4. kill -9 mid-copy ---------------------------------------------------------
phase "4. kill -9 of the worker mid-copy, systemd restarts it"
st=$(prop "$U" StatusText)
pid=$(prop "$U" MainPID)
if [[ $pid != 0 && $st == copying* ]]; then
	kill -9 "$pid"
	pass "worker killed mid-copy" "pid $pid at: $st"
else
	fail "worker killed mid-copy" "MainPID=$pid StatusText=$st"
fi
if wait_for 30 bash -c "(( \$(systemctl show -p NRestarts --value $U) >= 1 ))"; then
	pass "systemd restarted the worker" "NRestarts=$(prop "$U" NRestarts), then: $(prop "$U" StatusText)"
else
	fail "systemd restarted the worker" "NRestarts=$(prop "$U" NRestarts) $(prop "$U" ActiveState)"
fi
if wait_for 120 is "$U" ActiveState inactive && is "$U" Result success && is "$U" ExecMainStatus 0; then
	pass "the retry completed" "$(prop "$U" StatusText)"
else
	fail "the retry completed" "$(prop "$U" ActiveState) $(prop "$U" Result) status $(prop "$U" ExecMainStatus)"
fi
# systemd 252 also fires OnSuccess= when it schedules the restart: the guard
# must skip postgres then. Later systemd (257) does not: postgres must simply
# not have started before the backup finished.
guard=$(journalctl -q --no-pager -u "postgresql@$PGV-standby" | grep -c 'base backup pending')
t_done=$(journalctl -q --no-pager -o short-unix -u "$U" | grep -m1 'Deactivated successfully' | cut -d' ' -f1)
t_pg=$(journalctl -q --no-pager -o short-unix -u "postgresql@$PGV-standby" | grep -m1 -E 'Starting|Started' | cut -d' ' -f1)
if ((guard > 0)); then
	pass "postgres did not run during the backup" "the guard skipped it $guard time(s): OnSuccess= fired on the restart"
elif [[ -n $t_done && -n $t_pg ]] && awk -v a="$t_pg" -v b="$t_done" 'BEGIN{exit !(a >= b)}'; then
	pass "postgres did not run during the backup" "first started after it: this systemd fires no OnSuccess= on a restart"
else
	fail "postgres did not run during the backup" "guard=$guard postgres at ${t_pg:-?}, backup done at ${t_done:-?}"
fi

# --- 5. the chained postgres ------------------------------------------------------
phase "5. postgresql@$PGV-standby started by OnSuccess=, replicates"
if wait "$WAIT_PID"; then rc=0; else rc=$?; fi
if ((rc == 0)); then
	pass "pg-standby wait (started after start --no-block) exits 0 once the copy is complete" "$(tail -n1 "$WAIT_OUT")"
else
	fail "pg-standby wait (started after start --no-block) exits 0 once the copy is complete" "exit $rc: $(tail -n3 "$WAIT_OUT")"
fi
out=$(pg-standby wait "$PGV-standby" --for streaming --timeout 60s 2>&1)
rc=$?
if ((rc == 0)); then pass "pg-standby wait --for streaming exits 0" "$out"; else fail "pg-standby wait --for streaming exits 0" "exit $rc: $out"; fi
if wait_for 60 is "postgresql@$PGV-standby" ActiveState active; then pass "postgresql@$PGV-standby started by itself"; else fail "postgresql@$PGV-standby started by itself"; fi
if wait_for 30 bash -c "[[ \$(pg_lsclusters --no-header | awk '\$2==\"standby\"{print \$4}') == online,recovery ]]"; then
	pass "pg_lsclusters: online,recovery" "$(pg_lsclusters --no-header | awk '$2=="standby"')"
else
	fail "pg_lsclusters: online,recovery" "$(pg_lsclusters --no-header | awk '$2=="standby"')"
fi
SPORT=$(port_of standby)
psql_p "CREATE TABLE e2e_marker AS SELECT 'written after the backup ' || now() AS note" >/dev/null
if wait_for 30 bash -c "[[ -n \$(runuser -u postgres -- psql -X -Atq -p $SPORT -d postgres -c 'SELECT note FROM e2e_marker' 2>/dev/null) ]]"; then
	pass "a row inserted on the primary after the backup is read on the standby" "$(psql_s "$SPORT" 'SELECT note FROM e2e_marker')"
else
	fail "a row inserted on the primary after the backup is read on the standby"
fi
check "the primary streams to the standby" \
	bash -c "runuser -u postgres -- psql -X -Atq -p 5432 -d postgres -c \"SELECT state FROM pg_stat_replication WHERE application_name = 'e2e-standby'\" | grep -qx streaming"
check "the instance has standby.signal and no basebackup.signal" test ! -e "$DATA/basebackup.signal" -a -f "$DATA/standby.signal"

# The metrics timer keeps the finished standby's health gauges true (docs/metrics.md).
MDIR=/var/lib/postgresql/metrics
# (busapi.Label also escapes a leading digit: 15-standby is _315_2dstandby.)
MFILE=$MDIR/pg-standby-_3${PGV:0:1}$(bus_label "${PGV:1}-standby").prom
install -d -o postgres -g postgres -m 0755 "$MDIR"
echo "pg_standby.metrics_dir = '$MDIR'" >>"/etc/postgresql/$PGV/standby/postgresql.conf"
systemctl enable --now -q "pg-standby-metrics@$PGV-standby.timer"
UNITS=("pg-standby-metrics@$PGV-standby.service")
if wait_for 30 grep -qx "pgstandby_standby_streaming{pg_instance=\"$PGV-standby\"} 1" "$MFILE"; then
	pass "pg-standby-metrics@$PGV-standby.timer: the standby's health in its metrics file" "$(grep -E '^pgstandby_(standby_state|metrics_last)' "$MFILE" | tr '\n' ' ')"
else
	fail "pg-standby-metrics@$PGV-standby.timer: the standby's health in its metrics file" "$(cat "$MFILE" 2>&1 | grep -v '^#' | tr '\n' ' ')"
fi
stamp() { sed -n 's/^pgstandby_metrics_last_update_timestamp_seconds{[^}]*} //p' "$MFILE"; }
t0=$(stamp)
sleep 1
systemctl start "pg-standby-metrics@$PGV-standby.service"
check "pg-standby-metrics@$PGV-standby.service: a run succeeds and rewrites the file" \
	bash -c "[[ \$(systemctl show -p Result --value pg-standby-metrics@$PGV-standby.service) == success && \$(sed -n 's/^pgstandby_metrics_last_update_timestamp_seconds{[^}]*} //p' $MFILE) != $t0 ]]"

# --- 6. just start postgres --------------------------------------------------------
phase "6. systemctl start postgresql@$PGV-other on a minimal instance"
UNITS=("pg-standby@$PGV-other.service" "postgresql@$PGV-other.service")
pg-standby init --primary-conninfo "$PRIMARY application_name=e2e-other" "$PGV-other" >/dev/null 2>&1
systemctl start "postgresql@$PGV-other"
info "systemctl start returned $?: $(prop "postgresql@$PGV-other" ActiveState), condition skipped it"
if wait_for 90 is "postgresql@$PGV-other" ActiveState active; then
	pass "the backup ran first, then postgres came up" "pg-standby@$PGV-other: $(prop "pg-standby@$PGV-other" Result), $(prop "pg-standby@$PGV-other" StatusText)"
else
	fail "the backup ran first, then postgres came up"
fi
check "pg_lsclusters: $PGV-other online,recovery" wait_for 20 bash -c "[[ \$(pg_lsclusters --no-header | awk '\$2==\"other\"{print \$4}') == online,recovery ]]"

# --- 7. stop during a backup -------------------------------------------------------
phase "7. systemctl stop during a backup"
U=pg-standby@$PGV-stop.service
UNITS=("$U" "postgresql@$PGV-stop.service")
pg-standby init --primary-conninfo "$PRIMARY application_name=e2e-stop" --max-rate 4096 "$PGV-stop" >/dev/null 2>&1
systemctl start --no-block "$U"
wait_for 30 bash -c "[[ \$(systemctl show -p StatusText --value $U) == copying* ]]"
info "before the stop: $(prop "$U" StatusText)"
t=$(now)
systemctl stop "$U"
info "systemctl stop took $(awk -v a="$t" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}') s"
if is "$U" ActiveState inactive && is "$U" Result success; then pass "clean stop" "ActiveState=inactive Result=success"; else fail "clean stop" "$(prop "$U" ActiveState) $(prop "$U" Result)"; fi
sleep 2
if ! is "postgresql@$PGV-stop" ActiveState active && ! is "$U" ActiveState activating; then
	pass "the stop holds: postgres skipped, backup not restarted"
else
	fail "the stop holds: postgres skipped, backup not restarted" "postgres $(prop "postgresql@$PGV-stop" ActiveState), backup $(prop "$U" ActiveState)"
fi
check "no replication slot left on the primary" wait_for 10 bash -c "[[ \$(runuser -u postgres -- psql -X -Atq -p 5432 -d postgres -c 'SELECT count(*) FROM pg_replication_slots') == 0 ]]"
check "resumable: basebackup.signal kept" test -f "/var/lib/postgresql/$PGV/stop/basebackup.signal"
# Resume at full speed: a later deliberate postgres start runs the backup again.
sed -i '/^pg_standby\.max_rate/d' "/etc/postgresql/$PGV/stop/postgresql.conf"
systemctl start "postgresql@$PGV-stop"
if wait_for 90 is "postgresql@$PGV-stop" ActiveState active && [[ $(lsc stop) == online,recovery ]]; then
	pass "the resumed backup completes, postgres online,recovery"
else
	fail "the resumed backup completes, postgres online,recovery" "$(lsc stop)"
fi

# --- 7b. Cancel() on D-Bus during a backup ----------------------------------------
# Like systemctl stop: not restarted, resumable, recorded, postgres not started.
# (The unit ends failed/exit-code with status 80: a worker that ends before
# READY=1 other than by a stop job is a failure to systemd 252.)
phase "7b. Cancel() on D-Bus during a backup"
U=pg-standby@$PGV-cancel.service
UNITS=("$U" "postgresql@$PGV-cancel.service")
pg-standby init --primary-conninfo "$PRIMARY application_name=e2e-cancel" --max-rate 4096 "$PGV-cancel" >/dev/null 2>&1
systemctl start --no-block "$U"
wait_for 30 bash -c "[[ \$(systemctl show -p StatusText --value $U) == *copying* ]]"
label=$(bus_label "/var/lib/postgresql/$PGV/cancel")
name=org.pgstandby.Standby1.$label path=/org/pgstandby/Standby1/job/$label
if wait_for 10 bash -c "busctl --system list --no-legend | grep -q '^$name '" &&
	busctl --system call "$name" "$path" org.pgstandby.Standby1.Job Cancel >/dev/null 2>&1; then
	pass "Cancel() over busctl accepted"
else
	fail "Cancel() over busctl accepted" "$name"
fi
wait_for 30 bash -c "! systemctl is-active -q $U && [[ \$(systemctl show -p ActiveState --value $U) != deactivating ]]"
sleep 7 # longer than RestartSec=5s: a restart would have happened
info "after Cancel: $(systemctl show -p ActiveState,Result,NRestarts,ExecMainStatus "$U" | tr '\n' ' ')"
if is "$U" NRestarts 0 && is "$U" ExecMainStatus 80 && ! is "$U" ActiveState activating && ! is "$U" ActiveState active; then
	pass "Cancel holds: exit 80, not restarted" "$(prop "$U" ActiveState)/$(prop "$U" Result)"
else
	fail "Cancel holds: exit 80, not restarted" "$(systemctl show -p ActiveState,Result,NRestarts,ExecMainStatus "$U" | tr '\n' ' ')"
fi
check "after Cancel: the stop note for postgres' guard" test -f "/run/pg-standby/$PGV-cancel.stopped"
check "after Cancel: postgres not started" bash -c "! systemctl is-active -q postgresql@$PGV-cancel"
check "after Cancel: resumable, basebackup.signal kept" test -f "/var/lib/postgresql/$PGV/cancel/basebackup.signal"
line=$(pg-standby status "$PGV-cancel" 2>&1)
if grep -q "backup in progress, not running: attempt 1 stopped" <<<"$line"; then pass "status records the stop" "$line"; else fail "status records the stop" "$line"; fi

# --- 8. permanent misconfiguration ---------------------------------------------------
phase "8. wrong password: fails once, says why"
U=pg-standby@$PGV-bad.service
UNITS=("$U")
pg-standby init --primary-conninfo "host=127.0.0.1 port=5432 user=replicator password=wrong" "$PGV-bad" >/dev/null 2>&1
systemctl start "$U" >/dev/null 2>&1
info "systemctl start returned $?"
sleep 7 # longer than RestartSec=5s: a restart would have happened
if is "$U" ActiveState failed && is "$U" ExecMainStatus 78 && is "$U" NRestarts 0; then
	pass "failed with status 78, no restart" "NRestarts=0"
else
	fail "failed with status 78, no restart" "$(prop "$U" ActiveState) status $(prop "$U" ExecMainStatus) NRestarts $(prop "$U" NRestarts)"
fi
check "postgres not started" bash -c "! systemctl is-active -q postgresql@$PGV-bad"
why=$(systemctl status "$U" -n 20 --no-pager 2>&1 | grep -m1 -i 'password authentication failed')
if [[ -n $why ]]; then pass "systemctl status says why in one line" "$(sed 's/^.*\]: //' <<<"$why")"; else fail "systemctl status says why in one line"; fi

# --- 9. exposure -----------------------------------------------------------------------
phase "9. systemd-analyze security"
UNITS=()
line=$(systemd-analyze security pg-standby@x.service --no-pager 2>&1 | grep 'Overall exposure')
score=$(sed -n 's/.*: *\([0-9.]*\) .*/\1/p' <<<"$line")
info "EXPOSURE ${line#→ }"
if [[ -n $score ]] && awk -v s="$score" 'BEGIN{exit !(s <= 3.0)}'; then pass "pg-standby@x.service exposure <= 3.0" "$score"; else fail "pg-standby@x.service exposure <= 3.0" "$line"; fi

# --- 10. remove -------------------------------------------------------------------------
phase "10. apt-get remove: the standby's data untouched"
UNITS=("postgresql@$PGV-standby.service")
kill $LOAD 2>/dev/null
sum_data() { (cd "$DATA" && find . -path ./pg_wal -prune -o -path ./base -prune -o -path ./global -prune -o -type f -printf '%p %s\n' | sort | md5sum); }
before=$(sum_data)
files_before=$(find "$DATA" -type f | wc -l)
if out=$(apt-get remove -y -q pg-standby 2>&1); then pass "apt-get remove pg-standby"; else
	fail "apt-get remove pg-standby"
	echo "$out" | tail -n 15 | sed 's/^/      | /'
fi
check "the metrics timer stopped" bash -c "! systemctl is-active -q pg-standby-metrics@$PGV-standby.timer"
check "binary, units, drop-in and policy gone" test ! -e /usr/bin/pg-standby -a ! -e /usr/lib/systemd/system/pg-standby@.service -a \
	! -e /usr/lib/systemd/system/postgresql@.service.d/pg-standby.conf -a ! -e /usr/share/dbus-1/system.d/pg-standby.conf
check "systemd forgot the units (daemon-reload in postrm)" bash -c "[[ \$(systemctl show -p NeedDaemonReload --value postgresql@$PGV-standby) == no ]] &&
	! systemctl show -p DropInPaths --value postgresql@$PGV-standby | grep -q pg-standby"
check "the standby kept running" is "postgresql@$PGV-standby" ActiveState active
files_after=$(find "$DATA" -type f | wc -l)
if [[ $(sum_data) == "$before" && -f $DATA/standby.signal && -f $DATA/global/pg_control && -f $DATA/PG_VERSION ]] && ((files_after >= files_before - 5)); then
	pass "the standby's data directory untouched" "$files_before files before, $files_after after"
else
	fail "the standby's data directory untouched" "$files_before files before, $files_after after"
fi
systemctl restart "postgresql@$PGV-standby"
if wait_for 30 bash -c "[[ \$(runuser -u postgres -- psql -X -Atq -p $SPORT -d postgres -c 'SELECT pg_is_in_recovery() AND count(*) = 1 FROM e2e_marker' 2>/dev/null) == t ]]"; then
	pass "after removal the standby restarts and still replicates"
else
	fail "after removal the standby restarts and still replicates"
fi
check "dpkg --purge" dpkg --purge pg-standby
phase ""
echo "SCENARIO DONE"
