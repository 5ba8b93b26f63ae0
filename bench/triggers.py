"""What a session without ``pgtrigger.ignore`` costs the ledger, side by side in one process.

Every django-pgtrigger trigger (the journal line's deferred balance check, the append-only guards)
reads ``pgtrigger.ignore`` in an exception block; a session where it is unset or empty raises and
catches an error per row (a subtransaction). ``scf.postgresql`` starts every direct session with
it present and empty (A); B empties it with ``set_config`` as a pooled session, or one after
``pgtrigger.ignore()``, has it. Both post the same entries through ``lending.services.ledger``
(settlement to overpayment, four lines), in two shapes:

* ``single``: one entry per transaction (a click, a payout, one repayment);
* ``batch``: ``--batch`` entries in one transaction (COB, a bank file's repayments), timing the
  posting and the commit (where the deferred checks run) apart.

Rounds alternate A B B A; prints the medians and the ratio B / A. Its own database
(``scf_bench_triggers``, created and migrated if missing). Usage::

    .venv/bin/python -m bench.triggers [--rounds 8] [--single 300] [--batch 2000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import statistics
import time
from decimal import Decimal

from bench.lib.db import django_setup, ensure_database, scratch_name
from bench.lib.report import load_average

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/scf_bench_triggers"
DAY = dt.date(2026, 12, 1)
_keys = itertools.count()


def _post_one() -> None:
    from lending.models import AccountCode, EntryKind
    from lending.services.ledger import Posting, ledger_post

    half = Decimal("50.00")
    ledger_post(
        kind=EntryKind.REPAYMENT,
        idempotency_key=f"bench-triggers:{time.time_ns()}:{next(_keys)}",
        business_date=DAY,
        currency="CNY",
        postings=[
            Posting.dr(AccountCode.SETTLEMENT, half),
            Posting.dr(AccountCode.SETTLEMENT, half),
            Posting.cr(AccountCode.AGENT_OVERPAYMENTS, half),
            Posting.cr(AccountCode.AGENT_OVERPAYMENTS, half),
        ],
    )


def _session(unset: bool) -> None:
    from django.db import connection

    connection.close()
    connection.ensure_connection()
    if unset:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('pgtrigger.ignore', '', false)")


def _single(unset: bool, count: int) -> float:
    """Milliseconds per entry, one transaction each."""
    from django.db import transaction

    _session(unset)
    started = time.perf_counter()
    for _ in range(count):
        with transaction.atomic():
            _post_one()
    return (time.perf_counter() - started) * 1000 / count


def _batch(unset: bool, count: int) -> tuple[float, float]:
    """Seconds to post ``count`` entries in one transaction, and of it the commit's."""
    from django.db import connection

    _session(unset)
    connection.set_autocommit(False)
    try:
        started = time.perf_counter()
        for _ in range(count):
            _post_one()
        committing = time.perf_counter()
        connection.commit()
        ended = time.perf_counter()
    finally:
        connection.set_autocommit(True)
    return ended - started, ended - committing


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.triggers")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--single", type=int, default=300, help="entries, one transaction each")
    parser.add_argument("--batch", type=int, default=2000, help="entries in one transaction")
    args = parser.parse_args()
    scratch_name(args.database_url)
    ensure_database(args.database_url)
    django_setup(args.database_url)
    figures: dict[str, dict[str, list[float]]] = {
        side: {"single": [], "batch": [], "commit": []} for side in ("A", "B")
    }
    for index in range(args.rounds):
        order = "AB" if index % 4 in (0, 3) else "BA"
        for side in order:
            unset = side == "B"
            figures[side]["single"].append(_single(unset, args.single))
            total, commit = _batch(unset, args.batch)
            figures[side]["batch"].append(total)
            figures[side]["commit"].append(commit)
    print(f"load average {load_average()}; {args.rounds} rounds, A B B A")
    rows = [
        ("single", "ms per entry, one transaction each"),
        ("batch", f"s for {args.batch} entries in one transaction"),
        ("commit", "s of it at commit"),
    ]
    for key, label in rows:
        a, b = (statistics.median(figures[side][key]) for side in "AB")
        print(f"{label:45} A (set) {a:8.3f}  B (unset) {b:8.3f}  B / A {b / a:5.2f}")


if __name__ == "__main__":
    main()
