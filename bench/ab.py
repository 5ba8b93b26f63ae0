"""Side by side in one process: the finance click with and without a change, block by block.

A shared machine's speed drifts by more than a change of a few per cent between two HTTP runs,
so those cannot resolve it. Here one process clicks through the whole Django +
DRF stack (``WSGIHandler``, no sockets, as ``bench.finance``'s in-process phase), serially,
in blocks of ``--block`` clicks that take turns, ABBA: A, B, B, A, and so on, so that each pair
of neighbouring blocks ran under about the same machine speed. For every block it takes the CPU
per click of this process (the app) and of its PostgreSQL backend (``/proc/PID/schedstat``,
nanoseconds), and prints the medians and the median of the pair-by-pair ratios B / A.

What is switched (``--toggle``):

* ``instances``: the click's model instances made by ``scf.sql.build`` and ``model_from_row``
  (A) or by ``Model.__init__`` (B), forced by the switch the helpers have for models with init
  receivers;
* ``roundtrip``: the click as it is (A), or with one more round trip to PostgreSQL, a prepared
  ``SELECT 1`` before the order is read (B): what one round trip costs the app and the backend.

    .venv/bin/python -m bench.ab [--toggle instances|roundtrip] [--blocks 80] [--block 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.finance.clicks import (
    DEFAULT_BROKER_URL,
    DEFAULT_DATABASE_URL,
    analyze_and_checkpoint,
    broker_flush,
    click_env,
    click_runner,
    seed_cohort,
    seed_program,
)
from bench.lib.cpu import backend_cpu_seconds
from bench.lib.db import app_env, django_setup, ensure_database


def _instances(on: bool) -> Callable[[], None]:
    import scf.sql

    ours = scf.sql._has_init_receivers
    if on:
        scf.sql._has_init_receivers = lambda model: True  # type: ignore[assignment]

    def undo() -> None:
        scf.sql._has_init_receivers = ours

    return undo


def _roundtrip(on: bool) -> Callable[[], None]:
    from django.db import connection

    from lending.services import finance as service
    from scf.sql import execute_prepared

    plain = service._order_for_agent

    def with_one_more(*args: Any, **kwargs: Any) -> Any:
        with connection.cursor() as cursor:
            execute_prepared(cursor, "SELECT 1", [])
            cursor.fetchone()
        return plain(*args, **kwargs)

    if on:
        service._order_for_agent = with_one_more  # type: ignore[assignment]

    def undo() -> None:
        service._order_for_agent = plain  # type: ignore[assignment]

    return undo


# name: (label of A, label of B, switch: B on when called with True; returns its undo)
TOGGLES: dict[str, tuple[str, str, Callable[[bool], Callable[[], None]]]] = {
    "instances": ("ours", "Django's", _instances),
    "roundtrip": ("as is", "one more round trip", _roundtrip),
}


def _summary(name: str, values: list[float]) -> str:
    shown = " ".join(f"{v:.0f}" for v in values)
    return f"{name:>22}: median {statistics.median(values):6.0f} us CPU/click ({shown})"


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ab", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
    )
    parser.add_argument("--broker-url", default=DEFAULT_BROKER_URL)
    parser.add_argument("--toggle", choices=sorted(TOGGLES), default="instances")
    parser.add_argument("--blocks", type=int, default=80, help="blocks, half of each kind")
    parser.add_argument("--block", type=int, default=50, help="clicks per block")
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()
    ensure_database(args.database_url)
    django_setup(args.database_url, app_env(args.database_url, **click_env(args.broker_url)))
    broker_flush(args.broker_url)  # payments are queued (as in production), never paid

    label_a, label_b, switch = TOGGLES[args.toggle]
    serial = int(time.time())
    tag = f"{serial:x}"[-7:].upper()
    setup = seed_program(tag, serial)
    clicks = args.warmup + args.blocks * args.block
    cohort = seed_cohort(setup, "ab", serial, 0, max(50, clicks // 10), clicks, serial)
    analyze_and_checkpoint()
    one = click_runner(False, tag, cohort.clicks)
    for click in cohort.clicks[: args.warmup]:
        one(click)

    app: dict[bool, list[float]] = {False: [], True: []}
    backend: dict[bool, list[float]] = {False: [], True: []}
    ratios: dict[str, list[float]] = {"app": [], "backend": [], "both": []}
    outcomes: dict[str, int] = {}
    for n in range(args.blocks):
        # ABBA order: a steady drift of the machine's speed favours neither side.
        b = n % 4 in (1, 2)
        undo = switch(b)
        try:
            first = args.warmup + n * args.block
            cpu, pg = time.process_time(), backend_cpu_seconds()
            for click in cohort.clicks[first : first + args.block]:
                outcome = one(click)
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
            app[b].append((time.process_time() - cpu) / args.block * 1e6)
            backend[b].append((backend_cpu_seconds() - pg) / args.block * 1e6)
        finally:
            undo()
        if n % 2:
            ratios["app"].append(app[True][-1] / app[False][-1])
            ratios["backend"].append(backend[True][-1] / backend[False][-1])
            both = [app[side][-1] + backend[side][-1] for side in (True, False)]
            ratios["both"].append(both[0] / both[1])
    broker_flush(args.broker_url)

    print(f"run {tag}: {args.toggle}, {args.blocks} blocks of {args.block} clicks, {outcomes}")
    for side, label in ((False, label_a), (True, label_b)):
        print(_summary(f"app, {label}", app[side]))
        print(_summary(f"backend, {label}", backend[side]))
    for what, values in ratios.items():
        more = sum(r > 1 for r in values)
        print(
            f"{label_b} / {label_a}, {what}, pair by pair: median "
            f"{statistics.median(values):.3f}, dearer in {more} of {len(values)} pairs"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
