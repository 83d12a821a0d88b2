#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build, test and demo
# pg-standby: PostgreSQL 15 (server + client), dbus, lz4, mmdebstrap (for the
# PostgreSQL 17/18 rootfs that scripts/pg-rootfs.sh builds), Patroni and etcd
# (the Patroni replica-method test), prometheus-node-exporter (the metrics
# tests), and the Go modules.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
command -v psql >/dev/null || need+=(postgresql-client-15)
command -v dbus-daemon >/dev/null || need+=(dbus)
command -v runuser >/dev/null || need+=(util-linux)
command -v systemd-analyze >/dev/null || need+=(systemd)   # unit checks: verify, security
command -v lz4 >/dev/null || need+=(lz4)                   # tests: frames of linked blocks
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)     # tests: PostgreSQL 17/18 rootfs (scripts/pg-rootfs.sh)
command -v patroni >/dev/null || need+=(patroni)           # tests: pg-standby patroni-replica under real Patroni (3.0.2)
command -v etcd >/dev/null || need+=(etcd-server)          # tests: Patroni's DCS, on a loopback port
command -v etcdctl >/dev/null || need+=(etcd-client)       # tests: etcd's health check
# tests: the metrics scraped by Debian's node_exporter (the tests start their own on loopback)
command -v prometheus-node-exporter >/dev/null || need+=(prometheus-node-exporter)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing ${need[*]}; run as root or: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # Debian's postgresql-15 package creates and starts a 15-main cluster; we never use it.
  apt-get install -y -q --no-install-recommends "${need[@]}"
fi
if ! command -v go >/dev/null; then
  [ -x /usr/local/go/bin/go ] && export PATH=$PATH:/usr/local/go/bin
fi
go mod download
