#!/usr/bin/env bash
# Installs the Debian packages trenv's setup needs, only those missing.
# Usage: scripts/install-system.sh [postgres] [venv] [chromium] [zip]   (each word names a need)
set -euo pipefail

need_pkgs=()
want() { dpkg -s "$1" >/dev/null 2>&1 || need_pkgs+=("$1"); }

for need in "$@"; do
  case "$need" in
    venv) python3 -c 'import venv, ensurepip' 2>/dev/null || want python3-venv ;;
    postgres) command -v /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || want postgresql ;;
    # Browser tests drive Debian's chromium through Playwright (its own download is not used).
    chromium) command -v chromium >/dev/null 2>&1 || want chromium ;;
    # A test re-zips a release bundle with Info-ZIP, as a recipient would.
    zip) command -v zip >/dev/null 2>&1 || want zip ;;
    *) echo "install-system.sh: unknown need '$need' (known: venv, postgres, chromium, zip)" >&2; exit 2 ;;
  esac
done

if [ "${#need_pkgs[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-system.sh: need root to install: ${need_pkgs[*]}" >&2
    exit 1
  fi
  echo "Installing Debian packages: ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}"
fi
