#!/usr/bin/env bash
# `make demo`: set up (or refresh) the demo installation under .trenv/demo and start the hub
# on http://127.0.0.1:8000; `scripts/demo.sh stop` (make demo-stop) stops it. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
export TRENV_HOME="${TRENV_HOME:-$PWD/.trenv/demo}"
TRENV=.venv/bin/trenv

case "${1:-start}" in
  start)
    scripts/install-docker.sh
    scripts/install-proxy.sh
    "$TRENV" init
    "$TRENV" demo seed
    "$TRENV" demo image
    "$TRENV" demo logins
    "$TRENV" demo data            # synth -> ingest -> link -> grants -> budgets -> publish
    "$TRENV" demo notebooks       # notebooks/ into rosa's workspace
    "$TRENV" hub start
    "$TRENV" hub check-network >/dev/null
    "$TRENV" demo request         # notebook 1 run in rosa's server: a request for the checkers
    "$TRENV" audit verify
    cat <<MSG

trenv demo is running at http://${TRENV_HUB_PUBLIC_IP:-127.0.0.1}:${TRENV_HUB_PUBLIC_PORT:-8000}
  accounts:  rosa (researcher), chris and cleo (output checkers), adam (admin),
             stella (steward), carl (data controller)
  logins:    $TRENV_HOME/credentials.json (passwords, TOTP secrets, hub API token)
  project:   reoffending-demo, linked synthetic sources published; rosa's workspace holds
             notebooks/ (reoffending, forensic drugs, cybercrime with DP); an export request
             of rosa's waits in the checkers' queue (log in as chris or cleo)
  a code:    .venv/bin/python -c "import pyotp,json; print(pyotp.TOTP(json.load(open('$TRENV_HOME/credentials.json'))['users']['rosa']['totp_secret']).now())"
  stop it:   make demo-stop
MSG
    ;;
  stop)
    "$TRENV" hub stop
    ;;
  *)
    echo "usage: scripts/demo.sh [start|stop]" >&2
    exit 2
    ;;
esac
