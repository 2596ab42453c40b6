#!/usr/bin/env bash
# Installs what the Swarm sandbox and the e2e tests need on a Debian/Ubuntu machine
# and makes sure a host Docker engine is running (used to build the test images).
#
# Idempotent: packages already present are not reinstalled and a running dockerd is
# left alone. Must run as root. Works without systemd (containers, CI runners): the
# daemon is then started in the background with its log in /var/log/dockerd.log.
set -euo pipefail

if [[ "$(id -u)" != 0 ]]; then
  echo "install-prereqs.sh must run as root" >&2
  exit 1
fi

missing=()
command -v dockerd  >/dev/null 2>&1 || missing+=(docker.io)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
command -v ip       >/dev/null 2>&1 || missing+=(iproute2)
# nsenter and unshare come from util-linux, which is essential on Debian; be safe anyway.
{ command -v nsenter >/dev/null 2>&1 && command -v unshare >/dev/null 2>&1; } || missing+=(util-linux)

if (( ${#missing[@]} )); then
  echo "Installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi
# docker.io depends on containerd and runc; --no-install-recommends still brings them,
# but a client-less install is possible on some derivatives: check the pieces we use.
for bin in docker dockerd containerd runc ip iptables nsenter unshare; do
  command -v "$bin" >/dev/null 2>&1 || { echo "still missing after install: $bin" >&2; exit 1; }
done

if docker info >/dev/null 2>&1; then
  echo "host dockerd already running" >&2
  exit 0
fi

if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
  systemctl start docker >&2 || true
fi

if ! docker info >/dev/null 2>&1; then
  # Only the host engine writes /var/run/docker.pid (the sandbox daemons use their own
  # pid files), so this does not confuse a sandbox dockerd with the host one.
  hostpid="$(cat /var/run/docker.pid 2>/dev/null || true)"
  if [[ -n "$hostpid" ]] && kill -0 "$hostpid" 2>/dev/null; then
    echo "host dockerd (pid $hostpid) is starting; waiting" >&2
  else
    rm -f /var/run/docker.pid /var/run/docker.sock   # leftovers of a dead daemon
    echo "Starting dockerd in the background (log: /var/log/dockerd.log)" >&2
    # setsid: the daemon must outlive this script and its terminal.
    setsid nohup dockerd >>/var/log/dockerd.log 2>&1 </dev/null &
  fi
  for _ in $(seq 1 120); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
fi

if ! docker info >/dev/null 2>&1; then
  echo "dockerd did not come up; last lines of /var/log/dockerd.log:" >&2
  tail -n 30 /var/log/dockerd.log >&2 || true
  exit 1
fi
echo "host dockerd running: $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')" >&2
