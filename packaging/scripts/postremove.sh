#!/bin/sh
# pg-standby postrm (Debian: "remove", "purge", "upgrade" …) / %postun (RPM:
# 0 erase, 1 upgrade). Makes systemd and the D-Bus daemon forget the removed
# units and policy. Data directories, /etc/postgresql and any admin drop-in
# under /etc/systemd/system are never touched.
set -e

case "$1" in
remove | purge | 0)
	# The stop notes of pg-standby@.service (ExecStopPost=); /run only.
	rm -rf /run/pg-standby
	;;
esac

if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null 2>&1 || true
	if command -v dbus-send >/dev/null 2>&1; then
		dbus-send --system --type=method_call --dest=org.freedesktop.DBus \
			/org/freedesktop/DBus org.freedesktop.DBus.ReloadConfig >/dev/null 2>&1 || true
	fi
fi

exit 0
