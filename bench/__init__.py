"""Benchmarks that print figures (``docs/performance.md`` has today's and how to read them).

Run each from the repository root with the project's interpreter::

    .venv/bin/python -m bench.finance   # the finance click under a flash crowd (HTTP, in-process, raw SQL)
    .venv/bin/python -m bench.feed      # order feed ingestion: bulk, webhook, in-process
    .venv/bin/python -m bench.cob       # close of business: one night's accrual for a million loans
                                        # (--tripartite: with guarantee claims, beside the plain night)
    .venv/bin/python -m bench.disburse  # payouts through a Celery worker on Redis
    .venv/bin/python -m bench.credit    # the nightly credit scoring and line proposals
    .venv/bin/python -m bench.ab        # the finance click with and without a change, in one process
    .venv/bin/python -m bench.bankfiles # ISO 20022 files: a 10,000-payment pain.001, a 100,000-entry camt.053
    .venv/bin/python -m bench.feed_limits  # oversized order-feed requests: reply, time, peak memory

``--help`` lists each one's options. The parts they share live in ``bench.lib``; the finance
bench's own parts in ``bench.finance``. Every bench that uses a database runs on loopback only,
in a PostgreSQL database of its own (``scf_bench*``; only such a database is ever dropped);
``bench.bankfiles`` uses none.
"""
