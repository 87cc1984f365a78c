#!/usr/bin/env bash
# Installs the servers hab orchestrates (RabbitMQ, Redis, Redis Sentinel, HAProxy) from
# Debian's packages when they are missing. Idempotent: does nothing when all are present.
# hab never uses the Debian services: it runs every server itself as a plain child process
# on loopback ports, so this script keeps the package scripts from starting them.
set -euo pipefail

need=()
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need+=(rabbitmq-server)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || need+=(redis-sentinel)
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
# `ip` for the network namespaces of network = "namespaces" topologies (partitions).
command -v ip >/dev/null 2>&1 || need+=(iproute2)

if [ ${#need[@]} -eq 0 ]; then
  echo "install-servers: rabbitmq-server, redis-server, redis-sentinel and haproxy are present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-servers: need root (or sudo) to install: ${need[*]}" >&2; exit 1; }
  SUDO="sudo"
fi

echo "install-servers: installing ${need[*]}"
# Keep the packages' maintainer scripts from starting the Debian services: hab starts its
# own processes on free ports and a system RabbitMQ/Redis would only compete for CPU.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

# Stop anything the packages started anyway (e.g. where policy-rc.d is ignored).
for svc in rabbitmq-server redis-server redis-sentinel haproxy; do
  $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
echo "install-servers: done"
