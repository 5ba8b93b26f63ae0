#!/bin/sh
# Soak under crashes (issue 5, scenario 17): steady finance and repayment load on a throwaway
# platform of its own (PostgreSQL on 5499, Redis on 6390, gunicorn on 8099, worker, beat; all on
# loopback) while the worker, Redis and PostgreSQL are killed at random and started again; then
# ledger_check, the bank/ledger reconciliation and a summary. Exit 0 only if everything holds.
#
#   chaos/soak.sh                  # 5 minutes
#   chaos/soak.sh --duration 180   # bounded to 600 seconds whatever you ask
#   chaos/soak.sh --kill postgres --load finance   # scenario 7 alone (same as pg_restart.sh)
set -eu
cd "$(dirname "$0")/.."
exec nice -n 10 .venv/bin/python chaos/soak.py "$@"
