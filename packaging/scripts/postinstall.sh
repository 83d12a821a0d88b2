#!/bin/sh
# pg-standby postinst (Debian: "configure" …) / %post (RPM: 1 install, 2 upgrade).
# Makes systemd and the D-Bus daemon see the new unit files and bus policy.
# Nothing is enabled or started: a backup runs only when an admin starts
# pg-standby@INSTANCE.service (or postgres on an instance that still has
# basebackup.signal).
set -e

if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null 2>&1 || true
	# dbus-daemon notices new policy files itself; ask it anyway, so a policy
	# change holds at once. Harmless when the bus is not running.
	if command -v dbus-send >/dev/null 2>&1; then
		dbus-send --system --type=method_call --dest=org.freedesktop.DBus \
			/org/freedesktop/DBus org.freedesktop.DBus.ReloadConfig >/dev/null 2>&1 || true
	elif command -v busctl >/dev/null 2>&1; then
		busctl --system call org.freedesktop.DBus /org/freedesktop/DBus \
			org.freedesktop.DBus ReloadConfig >/dev/null 2>&1 || true
	fi
fi

exit 0
