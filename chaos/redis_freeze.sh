#!/bin/sh
# A hung Redis (issue 18, item 1): page, health-check and finance load (API and portal) on a
# throwaway platform of its own (PostgreSQL on 5498, Redis on 6389 as broker and cache, gunicorn
# with 3 sync workers on 8098, a worker, beat; all on loopback) while that Redis is frozen with
# SIGSTOP and resumed with SIGCONT. Prints latency percentiles before, during and after, replies by
# status, and checks nothing was lost. Exit 0 only if everything holds.
#
#   chaos/redis_freeze.sh                    # 20 s of load, 15 s frozen, 20 s after
#   chaos/redis_freeze.sh --freeze 20 --after 30
set -eu
cd "$(dirname "$0")/.."
exec nice -n 10 .venv/bin/python chaos/redis_freeze.py "$@"
