#!/usr/bin/env bash
# Installs configurable-http-proxy (JupyterHub's proxy, from npm) when it is missing.
set -euo pipefail
if command -v configurable-http-proxy >/dev/null 2>&1; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || { echo "install-proxy.sh: npm missing; run as root" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends nodejs npm
fi
echo "Installing configurable-http-proxy with npm"
npm install --global --no-audit --no-fund --loglevel=error configurable-http-proxy@5
command -v configurable-http-proxy >/dev/null 2>&1 || {
  echo "install-proxy.sh: configurable-http-proxy not on PATH after npm install" >&2
  exit 1
}
