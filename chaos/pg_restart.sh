#!/bin/sh
# Scenario 7: PostgreSQL restarted under finance load, on a PostgreSQL cluster of the script's own
# (port 5499, under /tmp): clients get clean 503s (no other 5xx, no hang), retries with the same
# Idempotency-Key converge on one loan per order, the ledger balances, no orphan lines.
set -eu
cd "$(dirname "$0")/.."
exec nice -n 10 .venv/bin/python chaos/soak.py --kill postgres --load finance --every 8 \
    --duration "${DURATION:-60}" --worker-chaos "" "$@"
