#!/bin/sh
# Scenario 4 at length: RUNS (default 1,000) disbursements, the worker's pool process SIGKILLed
# at a random point of each (before the bank call, after it before the commit, after the commit
# before the ack), on a Redis of the script's own (REDIS_PORT, default 6391, no persistence).
# It is tests/reliability/test_worker_kill.py with more runs: each payment exactly once at the
# bank and in the ledger, nothing left disbursing. Needs PostgreSQL (DATABASE_URL; the test
# database is DATABASE_URL's name with test_ in front). About 0.6 s a run on two busy cores.
set -eu
cd "$(dirname "$0")/.."
PORT="${REDIS_PORT:-6391}"
LOG="$(mktemp -d)/redis.log"
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no >"$LOG" 2>&1 &
REDIS_PID=$!
trap 'kill "$REDIS_PID" 2>/dev/null || true' EXIT INT TERM
until redis-cli -p "$PORT" ping >/dev/null 2>&1; do sleep 0.1; done
SCF_CHAOS_RUNS="${RUNS:-1000}" \
DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/scf_chaos}" \
REDIS_URL="redis://127.0.0.1:$PORT/0" \
nice -n 10 .venv/bin/pytest -q -p no:cacheprovider -s -W ignore \
    tests/reliability/test_worker_kill.py -k random_point "$@"
