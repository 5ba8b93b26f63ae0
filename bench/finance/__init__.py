"""Finance-decision benchmark: a flash crowd of "Finance this order" clicks against PostgreSQL.

Every phase gets its own cohort of agents (each with a credit line and enough confirmed orders,
every 10th line small enough to run out), all in one program of one enterprise, so each phase
starts from the same state and each order is financed exactly once. Phases, in one run and
against one database:

1. HTTP: the app under gunicorn (one or more settings, ``--servers``), ``--clients`` concurrent
   keep-alive clients clicking ``POST /api/v1/orders/{id}/finance/`` with a token and a unique
   ``Idempotency-Key``; ``--warmup`` clicks first, excluded from the figures. ``sync:4@PATH``
   serves another checkout (a prototype) against the same database, for side-by-side runs.
2. in-process, no sockets: ``loan_finance`` called directly (the service: locks, decision,
   reservation, writes), and the whole Django stack (middleware, DRF, token auth, idempotency,
   serialisation) called as gunicorn calls it (``WSGIHandler``, no sockets), each in
   ``--inprocess-procs`` processes.
3. raw SQL floor: the database work of a decision written by hand with psycopg2 (lock the line
   FOR UPDATE, insert loan and decision, reserve on line and program with conditional UPDATEs,
   commit), from ``--clients`` threads with a connection each.

Approved loans queue their payment after commit: on ``--broker-url`` (a Redis database of the
bench's own, flushed before and after; nothing consumes it during the run), as in production.
The per-user rate limits count in the same Redis database, as they do in production (one
round trip per click).

Reports decisions/s, latency percentiles, CPU per decision by process (app, PostgreSQL backends
of the bench database, this client, anything else on the machine), what busy backends waited on,
the API/raw ratio and the targets; then checks the books: no line or program over its limit or
negative, every line's ``reserved`` equal to the sum of its reserving loans, no decline for lack
of line headroom that would have fitted, and the clients' outcomes matching the decisions stored.

Usage (PostgreSQL must answer on loopback; the database is created and migrated if needed)::

    .venv/bin/python -m bench.finance [--servers sync:5,sync:4,gthread:2x4] [--json out.json]
    .venv/bin/python -m bench.finance --plot docs/img/finance-bench.png  # needs '.[bench]'
    .venv/bin/python -m bench.finance --profile 1000      # cProfile of loan_finance, then exit

gunicorn runs in its own session and is stopped however the script ends; ``--max-seconds``
bounds the run, and an interrupted run reports the phases that finished.

The parts: ``clicks`` (the cohorts and one click in-process; ``bench.ab`` uses them too),
``phases`` (HTTP and in-process), ``raw`` (the raw SQL floor), ``report``, and ``__main__``
(the options and the run).
"""
