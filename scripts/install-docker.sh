#!/usr/bin/env bash
# Makes a Docker engine available for trenv: installs Debian's docker.io (plus debootstrap
# for the base image and iptables for the network isolation rules) when missing, and starts
# dockerd when nothing answers on the socket. Idempotent: a second run changes nothing.
#
# There is no systemd on these machines, so dockerd is started in the background with its
# log in $TRENV_DOCKERD_LOG (default /var/log/trenv-dockerd.log).
#
# Usage (as root): scripts/install-docker.sh
set -euo pipefail

SOCKET=/var/run/docker.sock
LOG=${TRENV_DOCKERD_LOG:-/var/log/trenv-dockerd.log}
WAIT_SECONDS=${TRENV_DOCKERD_WAIT:-60}

die() {
  echo "install-docker.sh: $*" >&2
  exit 1
}

# Ask the engine itself over the socket (GET /_ping answers "OK"), so the check does not depend
# on which of the docker CLIs on PATH is found first or on its version.
engine_answers() {
  [ -S "$SOCKET" ] || return 1
  if ! command -v python3 >/dev/null 2>&1; then
    # No Python yet on a bare machine: docker.io's own client asks the same question.
    docker --host "unix://$SOCKET" version >/dev/null 2>&1
    return
  fi
  python3 - "$SOCKET" <<'PY' >/dev/null 2>&1
import socket, sys

sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.settimeout(3)
sock.connect(sys.argv[1])
sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
reply = b""
while chunk := sock.recv(4096):
    reply += chunk
sys.exit(0 if reply.startswith(b"HTTP/1.") and reply.rstrip().endswith(b"OK") else 1)
PY
}

if engine_answers; then
  missing_tools=()
  # /usr/sbin may be missing from a non-root PATH; look there too.
  for tool in debootstrap iptables; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing_tools+=("$tool")
  done
  if [ "${#missing_tools[@]}" -eq 0 ]; then
    echo "Docker engine already answering at $SOCKET"
    exit 0
  fi
fi

need_pkgs=()
want() { dpkg -s "$1" >/dev/null 2>&1 || need_pkgs+=("$1"); }
want docker.io
want debootstrap
want iptables

if [ "${#need_pkgs[@]}" -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || die "need root to install ${need_pkgs[*]}: run 'sudo $0'"
  echo "Installing Debian packages: ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Other set-up scripts may be running apt at the same time; wait for the lock instead of failing.
  apt-get -o DPkg::Lock::Timeout=600 update -qq ||
    die "apt-get update failed; check the Debian package sources in /etc/apt"
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need_pkgs[@]}" ||
    die "installing ${need_pkgs[*]} failed; see the apt output above"
fi

if engine_answers; then
  echo "Docker engine answering at $SOCKET"
  exit 0
fi

[ "$(id -u)" -eq 0 ] || die "dockerd is not running and only root can start it: run 'sudo $0'"
DOCKERD=$(command -v dockerd || true)
[ -n "$DOCKERD" ] || die "dockerd not found after installing docker.io; check 'dpkg -L docker.io'"

# A dockerd that is starting (another script got here first) gets the chance to finish before
# a second one is started; two daemons on the same data root would fight over it.
if ! pidof dockerd >/dev/null 2>&1; then
  # A stale pid file from a killed daemon makes a new dockerd refuse to start.
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    rm -f /var/run/docker.pid
  fi
  mkdir -p "$(dirname "$LOG")"
  echo "Starting dockerd (log: $LOG)"
  # containerd is started by dockerd itself when it is not already running.
  nohup "$DOCKERD" --host "unix://$SOCKET" >>"$LOG" 2>&1 </dev/null &
  disown || true
fi

for _ in $(seq 1 "$WAIT_SECONDS"); do
  if engine_answers; then
    echo "Docker engine answering at $SOCKET"
    exit 0
  fi
  sleep 1
done

echo "--- last lines of $LOG ---" >&2
tail -n 20 "$LOG" >&2 2>/dev/null || true
die "dockerd did not answer at $SOCKET within ${WAIT_SECONDS}s; see $LOG"
