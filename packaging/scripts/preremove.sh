#!/bin/sh
# pg-standby prerm (Debian: "remove", "upgrade" …) / %preun (RPM: 0 erase,
# 1 upgrade). On removal, stop running backups: a stopped backup stays
# resumable (basebackup.signal is kept), and its ExecStopPost= note keeps the
# chained postgres from starting. Postgres itself, and every data directory,
# is left alone.
set -e

case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		units=$(systemctl list-units --plain --no-legend --state=active,activating,reloading \
			'pg-standby@*.service' 2>/dev/null | awk '{print $1}') || true
		if [ -n "$units" ]; then
			echo "pg-standby: stopping running base backups (resumable): $units"
			# Debian: deb-systemd-invoke honours policy-rc.d; RPM systems: systemctl.
			invoke=systemctl
			command -v deb-systemd-invoke >/dev/null 2>&1 && invoke=deb-systemd-invoke
			# shellcheck disable=SC2086 # one word per unit
			$invoke stop $units >/dev/null 2>&1 || true
		fi
		# Metrics refresh timers would run a removed binary every minute.
		timers=$(systemctl list-units --plain --no-legend 'pg-standby-metrics@*.timer' 2>/dev/null | awk '{print $1}') || true
		# shellcheck disable=SC2086 # one word per unit
		[ -z "$timers" ] || systemctl stop $timers >/dev/null 2>&1 || true
	fi
	;;
esac

exit 0
