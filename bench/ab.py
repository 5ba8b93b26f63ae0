"""Side by side in one process: the finance click with and without a change, block by block.

A shared machine's speed drifts by more than a change of a few per cent between two HTTP runs,
so those cannot resolve it. Here one process clicks through the whole Django +
DRF stack (``WSGIHandler``, no sockets, as ``bench.finance``'s in-process phase), serially,
in blocks of ``--block`` clicks that take turns, ABBA: A, B, B, A, and so on, so that each pair
of neighbouring blocks ran under about the same machine speed. For every block it takes the CPU
per click of this process (the app) and of its PostgreSQL backend (``/proc/PID/schedstat``,
nanoseconds), and prints the medians and the median of the pair-by-pair ratios B / A.

What is switched (``--toggle``):

* ``instances``: the click's model instances made by ``scf.hotpath.build`` and ``model_from_row``
  (A) or by ``Model.__init__`` (B): the ``SCF_FAST_INSTANCES`` setting;
* ``plans``: sessions with ``plan_cache_mode = force_generic_plan`` (A) or PostgreSQL's own
  choice (B): the ``SCF_GENERIC_PLANS`` setting, each block on a new connection;
* ``prepared``: the hot statements prepared (A) or not (B): ``SCF_PREPARED_STATEMENTS``, each
  block on a new connection;
* ``roundtrip``: the click as it is (A), or with one more round trip to PostgreSQL, a prepared
  ``SELECT 1`` when the request starts (B): what one round trip costs the app and the backend.

Every switch is public: a setting (``override_settings``) or a request signal.

    .venv/bin/python -m bench.ab [--toggle instances|plans|prepared|roundtrip]
                                 [--blocks 80] [--block 50]
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


def _setting(name: str, *, close: bool = False) -> Callable[[bool], Callable[[], None]]:
    """A switch of the boolean setting ``name`` (the app's public switch): True on side A, False
    on side B. ``close``: the setting is read when a connection opens, so every block (either
    side) starts on a new one."""

    def switch(on: bool) -> Callable[[], None]:
        from django.db import connection
        from django.test.utils import override_settings

        override = override_settings(**{name: not on})
        override.enable()
        if close:
            connection.close()

        def undo() -> None:
            override.disable()
            if close:
                connection.close()

        return undo

    return switch


def _roundtrip(on: bool) -> Callable[[], None]:
    from django.core.signals import request_started
    from django.db import connection

    from scf.hotpath import execute_prepared

    def one_more(**kwargs: Any) -> None:
        with connection.cursor() as cursor:
            execute_prepared(cursor, "SELECT 1", [])
            cursor.fetchone()

    if on:
        request_started.connect(one_more, dispatch_uid="bench.ab.roundtrip")

    def undo() -> None:
        request_started.disconnect(dispatch_uid="bench.ab.roundtrip")

    return undo


# name: (label of A, label of B, switch: B on when called with True; returns its undo)
TOGGLES: dict[str, tuple[str, str, Callable[[bool], Callable[[], None]]]] = {
    "instances": ("ours", "Django's", _setting("SCF_FAST_INSTANCES")),
    "plans": ("generic plans", "server's choice", _setting("SCF_GENERIC_PLANS", close=True)),
    "prepared": ("prepared", "not prepared", _setting("SCF_PREPARED_STATEMENTS", close=True)),
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
