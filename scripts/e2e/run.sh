#!/usr/bin/env bash
# make e2e: the whole user story in a real, booted systemd (Debian's systemd as
# PID 1 in systemd-nspawn), with the built .deb installed by dpkg.
#
#   scripts/e2e/run.sh dist/pg-standby_VERSION-1_amd64.deb
#
# 1. host tools: systemd-container, mmdebstrap, zstd (installed if missing);
# 2. a Debian rootfs (mmdebstrap --variant=minbase), built once and cached as
#    ${XDG_CACHE_HOME:-~/.cache}/pg-standby-e2e/rootfs-SUITE-KEY.tar.zst, KEY
#    a hash of suite and package list; unpacked into a temporary directory;
# 3. boot it: --volatile=overlay (the unpacked tree stays pristine),
#    --private-network (its own 5432), the package bound read-only at
#    /opt/payload. On a host whose PID 1 is not systemd nspawn runs in a
#    cgroup of its own that this script creates and removes, with --keep-unit;
# 4. scenario.sh inside (nsenter into the container's namespaces), which
#    prints the named checks;
# 5. always: orderly shutdown (SIGTERM to nspawn, by PID), our cgroups and the
#    temporary directory removed.
# Env: E2E_SUITE (bookworm; trixie, sid), E2E_PG (15; 17, 18), SCALE (pgbench scale, 10),
#      E2E_KEEP=1 (keep the temporary directory), MIRROR/SECMIRROR.
set -euo pipefail

DEB=${1:?usage: $0 PACKAGE.deb}
DEB=$(realpath "$DEB")
HERE=$(cd "$(dirname "$0")" && pwd)
SUITE=${E2E_SUITE:-bookworm}
PGV=${E2E_PG:-15}
PKGS="systemd,systemd-sysv,dbus,libpam-systemd,postgresql-$PGV,ca-certificates,iproute2"
CACHE_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/pg-standby-e2e
KEY=$(printf 'minbase %s %s\n' "$SUITE" "$PKGS" | sha256sum | cut -c1-16)
CACHE=$CACHE_DIR/rootfs-$SUITE-$KEY.tar.zst
NAME=pgsb-e2e-$$

if [[ $(id -u) != 0 ]]; then
	echo "e2e: needs root (mmdebstrap, systemd-nspawn)" >&2
	exit 1
fi
[[ -f $DEB ]] || {
	echo "e2e: no such package: $DEB" >&2
	exit 1
}

now() { date +%s.%N; }
TIMES=()
lap() { # lap NAME START
	local line
	line=$(awk -v a="$2" -v b="$(now)" -v n="$1" 'BEGIN{printf "TIME %-44s %6.1fs", n, b-a}')
	TIMES+=("$line")
	echo "$line"
}
T_ALL=$(now)

# --- 1. host tools ----------------------------------------------------------------
T=$(now)
need=()
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v zstd >/dev/null || need+=(zstd)
command -v nsenter >/dev/null || need+=(util-linux)
if ((${#need[@]})); then
	echo "e2e: installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
lap "host tools" "$T"

# --- 2. rootfs ---------------------------------------------------------------------
host_uris() {
	grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' || true
	grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' || true
}
MIRROR=${MIRROR:-$(host_uris | grep -v security | head -n1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECMIRROR=${SECMIRROR:-$(host_uris | grep security | head -n1)}
SECMIRROR=${SECMIRROR:-http://security.debian.org/debian-security}
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/pg-standby-e2e.XXXXXX")
ROOT=$WORK/rootfs
PAYLOAD=$WORK/payload
mkdir -p "$CACHE_DIR"

T=$(now)
if [[ ! -f $CACHE ]]; then
	echo "e2e: building the $SUITE rootfs (cache miss: $CACHE)"
	sources=("deb $MIRROR $SUITE main")
	aptopts=()
	case $SUITE in
	bookworm | trixie) sources+=("deb $MIRROR $SUITE-updates main" "deb $SECMIRROR $SUITE-security main") ;;
	# Fact: the mirror's sid Release file can be past its Valid-Until date.
	sid | unstable) aptopts+=(--aptopt='Acquire::Check-Valid-Until "false"') ;;
	esac
	if ! mmdebstrap --mode=root --variant=minbase --include="$PKGS" "${aptopts[@]}" \
		--customize-hook='echo pgsb-e2e > "$1/etc/hostname"; : > "$1/etc/machine-id"' \
		"$SUITE" "$CACHE.tmp.tar.zst" "${sources[@]}" >"$WORK/mmdebstrap.log" 2>&1; then
		tail -n 30 "$WORK/mmdebstrap.log" >&2
		rm -f "$CACHE.tmp.tar.zst"
		exit 1
	fi
	mv "$CACHE.tmp.tar.zst" "$CACHE"
	lap "rootfs: mmdebstrap (cache miss)" "$T"
	T=$(now)
fi
mkdir -p "$ROOT"
zstd -q -d -c "$CACHE" | tar -C "$ROOT" --numeric-owner --xattrs --xattrs-include='*' -xpf -
lap "rootfs: unpack the cached tarball" "$T"

mkdir -p "$PAYLOAD"
cp "$DEB" "$HERE/scenario.sh" "$PAYLOAD/"
chmod 755 "$PAYLOAD/scenario.sh"

# --- 3. boot ---------------------------------------------------------------------------
# Without systemd on the host, nspawn (--keep-unit) splits the cgroup it starts
# in: give it one of its own in each hierarchy it uses.
HOST_SYSTEMD=
[[ -d /run/systemd/system ]] && HOST_SYSTEMD=1
cg_dirs() {
	[[ -n $HOST_SYSTEMD ]] && return 0
	local h
	for h in /sys/fs/cgroup/unified /sys/fs/cgroup/systemd; do
		[[ -d $h ]] && echo "$h/$NAME"
	done
	if [[ ! -d /sys/fs/cgroup/unified && $(stat -fc %T /sys/fs/cgroup) == cgroup2fs ]]; then
		echo "/sys/fs/cgroup/$NAME"
	fi
	return 0
}
NSPAWN= SCEN=
cleanup() {
	local rc=$? T d p
	T=$(now)
	# An interrupted scenario: end it (its processes, by PID) before the
	# shutdown, which would otherwise wait for it.
	if [[ -n $SCEN ]] && kill -0 "$SCEN" 2>/dev/null; then
		for p in $(ps -o pid= --ppid "$SCEN"); do kill -KILL "$p" 2>/dev/null || true; done
		kill -KILL "$SCEN" 2>/dev/null || true
	fi
	if [[ -n $NSPAWN ]] && kill -0 "$NSPAWN" 2>/dev/null; then
		kill -TERM "$NSPAWN" # nspawn asks the container's systemd for an orderly halt
		for _ in $(seq 300); do
			kill -0 "$NSPAWN" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$NSPAWN" 2>/dev/null; then
			echo "e2e: the container did not stop in 30 s: SIGKILL" >&2
			kill -KILL "$NSPAWN" 2>/dev/null || true
		fi
		wait "$NSPAWN" 2>/dev/null || true
	fi
	# Anything left in our own cgroups was started by this run.
	for d in $(cg_dirs); do
		[[ -d $d ]] || continue
		for p in $(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
		for _ in $(seq 50); do
			find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
			[[ -d $d ]] || break
			sleep 0.1
		done
		[[ -d $d ]] && echo "e2e: could not remove cgroup $d" >&2
	done
	[[ -n $NSPAWN ]] && lap "shutdown and cleanup" "$T"
	if [[ -n ${E2E_KEEP:-} ]]; then echo "e2e: kept $WORK"; else rm -rf "$WORK"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

T=$(now)
(
	keep=()
	if [[ -z $HOST_SYSTEMD ]]; then
		for d in $(cg_dirs); do
			mkdir -p "$d"
			echo "$BASHPID" >"$d/cgroup.procs"
		done
		keep=(--keep-unit) # no host systemd to ask for a scope
	fi
	# Fact (sid, systemd 262): a current systemd refuses to run as PID 1 on a
	# cgroup v1 hierarchy ("Detected unsupported legacy cgroup hierarchy"),
	# which is what nspawn gives the container on a hybrid host by default;
	# asked to, nspawn mounts the container a unified (v2) one instead.
	case $SUITE in
	sid | unstable) export SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=${SYSTEMD_NSPAWN_UNIFIED_HIERARCHY:-1} ;;
	esac
	exec systemd-nspawn -q -D "$ROOT" --volatile=overlay -b --register=no "${keep[@]}" \
		--machine="$NAME" --hostname=pgsb-e2e --private-network \
		--console=read-only --bind-ro="$PAYLOAD":/opt/payload
) </dev/null >"$WORK/console.log" 2>&1 &
NSPAWN=$!

LEADER=
for _ in $(seq 400); do
	for p in $(ps -o pid= --ppid "$NSPAWN" 2>/dev/null); do
		[[ $(cat "/proc/$p/comm" 2>/dev/null) == systemd ]] && LEADER=$p
	done
	[[ -n $LEADER ]] && break
	kill -0 "$NSPAWN" 2>/dev/null || break
	sleep 0.05
done
if [[ -z $LEADER ]]; then
	echo "e2e: the container did not start:" >&2
	tail -n 30 "$WORK/console.log" >&2
	exit 1
fi
in_ct() { nsenter -t "$LEADER" -m -u -i -n -p -- "$@"; }
state=
for _ in $(seq 300); do
	state=$(in_ct systemctl is-system-running --wait 2>/dev/null) || true
	case $state in running | degraded) break ;; esac
	sleep 0.1
done
lap "boot to is-system-running=$state" "$T"
if [[ $state != running && $state != degraded ]]; then
	echo "e2e: the container did not boot ($state)" >&2
	tail -n 30 "$WORK/console.log" >&2
	exit 1
fi
[[ $state == degraded ]] && in_ct systemctl --failed --no-legend --plain | sed 's/^/INFO  failed at boot: /'
echo "INFO  $(in_ct systemctl --version | head -n1), $(in_ct pg_lsclusters --no-header | awk '{print "PostgreSQL", $1, $2, $4}')"

# --- 4. scenario -----------------------------------------------------------------------
T=$(now)
# In the background: a signal to this script then ends the wait at once, and
# the shutdown in cleanup ends the scenario with the container.
in_ct env PGV="$PGV" SCALE="${SCALE:-10}" /opt/payload/scenario.sh >"$WORK/scenario.log" 2>&1 &
SCEN=$!
tail -n +1 --pid="$SCEN" -f "$WORK/scenario.log" &
TAIL=$!
wait "$SCEN" || true
wait "$TAIL" 2>/dev/null || true
lap "scenario (all steps)" "$T"

# --- summary ---------------------------------------------------------------------------
npass=$(grep -c '^PASS' "$WORK/scenario.log" || true)
nfail=$(grep -c '^FAIL' "$WORK/scenario.log" || true)
nskip=$(grep -c '^SKIP' "$WORK/scenario.log" || true)
done_=$(grep -c '^SCENARIO DONE' "$WORK/scenario.log" || true)
lap "total until now" "$T_ALL"
echo
echo "== summary ($SUITE, PostgreSQL $PGV)"
grep -E '^(PASS|FAIL|SKIP)' "$WORK/scenario.log" | sed 's/  (.*//'
echo "== timings"
printf '%s\n' "${TIMES[@]}" | grep -v -e 'scenario (all' -e 'total until'
grep '^TIME' "$WORK/scenario.log" | sed 's/^TIME /TIME   /' || true
printf '%s\n' "${TIMES[@]}" | grep -e 'scenario (all' -e 'total until'
grep 'EXPOSURE' "$WORK/scenario.log" || true
echo "$npass passed, $nfail failed, $nskip skipped$([[ $done_ == 1 ]] || echo ', SCENARIO INCOMPLETE')"
[[ $nfail == 0 && $done_ == 1 ]]
