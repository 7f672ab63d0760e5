#!/usr/bin/env bash
# `make demo`: set up (or refresh) the demo installation under .trenv/demo; `stop` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
export TRENV_HOME="${TRENV_HOME:-$PWD/.trenv/demo}"
TRENV=.venv/bin/trenv

case "${1:-start}" in
  start)
    "$TRENV" init
    "$TRENV" demo seed
    "$TRENV" audit verify
    echo
    echo "Demo registry at $TRENV_HOME. Try: TRENV_HOME=$TRENV_HOME $TRENV project show reoffending-demo"
    ;;
  stop)
    echo "Nothing is running yet: the demo has no long-running services in this version."
    ;;
  *)
    echo "usage: scripts/demo.sh [start|stop]" >&2
    exit 2
    ;;
esac
