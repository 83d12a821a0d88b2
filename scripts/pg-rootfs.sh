#!/usr/bin/env bash
# Builds, once, the minbase rootfs from which internal/testpg runs PostgreSQL
# majors that Debian 12 cannot install (their builds need a newer libc):
#   scripts/pg-rootfs.sh 17     Debian 13 "trixie", postgresql-17
#   scripts/pg-rootfs.sh 18     "sid", postgresql-18
# into ${XDG_CACHE_HOME:-~/.cache}/pg-standby-testpg/SUITE-pgV (testpg looks
# there). testpg runs the programs by chroot in a private mount namespace; the
# rootfs itself never has anything mounted in it, so it can be removed with
# rm -rf. Needs root; installs mmdebstrap if missing.
# Env: MIRROR (default: the host's Debian mirror).
set -euo pipefail
V=${1:?usage: $0 17|18}
case $V in
17) SUITE=trixie ;;
18) SUITE=sid ;;
*) echo "pg-rootfs: no rootfs for PostgreSQL $V (15 comes from the host)" >&2; exit 2 ;;
esac
if [[ $(id -u) != 0 ]]; then
	echo "pg-rootfs: needs root (mmdebstrap --mode=root, chroot)" >&2
	exit 1
fi
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/pg-standby-testpg
ROOT=$CACHE/$SUITE-pg$V
if [[ -x $ROOT/usr/lib/postgresql/$V/bin/postgres ]]; then
	echo "pg-rootfs: $ROOT is there (postgresql-$V $(cat "$ROOT/.pg-standby-version" 2>/dev/null))"
	exit 0
fi
if ! command -v mmdebstrap >/dev/null; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends mmdebstrap >/dev/null
fi
host_uris() {
	grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' || true
	grep -h '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' || true
}
MIRROR=${MIRROR:-$(host_uris | grep -v security | head -n1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
mkdir -p "$CACHE"
TMP=$(mktemp -d "$CACHE/.build-$SUITE-pg$V.XXXXXX")
trap 'rm -rf --one-file-system "$TMP"' EXIT
# Fact: the mirror's sid Release file is past its Valid-Until date; apt
# refuses it unless told not to check. No 17-main/18-main cluster is created
# (postgresql-common reads createcluster.d before the package's postinst).
if ! mmdebstrap --mode=root --variant=minbase \
	--aptopt='Acquire::Check-Valid-Until "false"' \
	--essential-hook='mkdir -p "$1/etc/postgresql-common/createcluster.d" && echo "create_main_cluster = false" >"$1/etc/postgresql-common/createcluster.d/pg-standby-test.conf"' \
	--include="postgresql-$V,postgresql-client-$V" \
	"$SUITE" "$TMP/rootfs" "deb $MIRROR $SUITE main" >"$TMP/mmdebstrap.log" 2>&1; then
	tail -n 30 "$TMP/mmdebstrap.log" >&2
	exit 1
fi
# Fact: the servers run as the HOST's postgres uid (postgres refuses a data
# directory another uid owns); initdb looks that uid up, so give it an entry.
uid=$(id -u postgres) gid=$(id -g postgres)
grep -q "^[^:]*:[^:]*:$uid:" "$TMP/rootfs/etc/passwd" || echo "pghost:x:$uid:$gid::/tmp:/bin/sh" >>"$TMP/rootfs/etc/passwd"
grep -q "^[^:]*:[^:]*:$gid:" "$TMP/rootfs/etc/group" || echo "pghost:x:$gid:" >>"$TMP/rootfs/etc/group"
chroot "$TMP/rootfs" dpkg-query -W -f='${Version}\n' "postgresql-$V" >"$TMP/rootfs/.pg-standby-version"
rm -rf --one-file-system "$ROOT"
mv "$TMP/rootfs" "$ROOT"
echo "pg-rootfs: built $ROOT (postgresql-$V $(cat "$ROOT/.pg-standby-version"))"
