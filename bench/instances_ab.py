"""Side by side in one process: the finance click with Django's model instances and with ours.

``scf.sql.build`` and ``model_from_row`` make the click's model instances without
``Model.__init__`` (five built, seven read per click). On this shared two-core machine the speed
drifts by a third within minutes, so two HTTP runs cannot resolve a change of a few per cent.
Here one process clicks through the whole Django + DRF stack (``WSGIHandler``, no sockets, as
``bench/finance.py``'s in-process phase), serially, in blocks of ``--block`` clicks that take
turns, ABBA: ours, Django's (``Model.__init__``, forced by the switch the helpers have for
models with init receivers), Django's, ours, and so on. Each pair of neighbouring blocks ran
under about the same machine speed. Prints this process's CPU per click for every block, the
medians, and the ratio of each pair.

    .venv/bin/python bench/instances_ab.py [--blocks 80] [--block 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import finance
from common import django_setup, ensure_database


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or finance.DEFAULT_DATABASE_URL,
    )
    parser.add_argument("--broker-url", default=finance.DEFAULT_BROKER_URL)
    parser.add_argument("--blocks", type=int, default=80, help="blocks, half of each kind")
    parser.add_argument("--block", type=int, default=50, help="clicks per block")
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()
    ensure_database(args.database_url)
    django_setup(args.database_url, finance.server_env(args.database_url, args.broker_url))
    finance.broker_flush(args.broker_url)  # payments are queued (as in production), never paid

    import scf.sql

    serial = int(time.time())
    tag = f"{serial:x}"[-7:].upper()
    setup = finance.seed_program(tag, serial)
    clicks = args.warmup + args.blocks * args.block
    cohort = finance.seed_cohort(setup, "ab", serial, 0, max(50, clicks // 10), clicks, serial)
    finance.analyze_and_checkpoint()
    one = finance.click_runner(False, tag, cohort.clicks)
    for click in cohort.clicks[: args.warmup]:
        one(click)

    ours = scf.sql._has_init_receivers
    kinds = {"ours": ours, "Django's": lambda model: True}
    per_click: dict[str, list[float]] = {name: [] for name in kinds}
    ratios: list[float] = []  # ours / Django's, block against its neighbour
    outcomes: dict[str, int] = {}
    for n in range(args.blocks):
        # ABBA order: a steady drift of the machine's speed favours neither kind.
        name = "ours" if n % 4 in (0, 3) else "Django's"
        scf.sql._has_init_receivers = kinds[name]  # type: ignore[assignment]
        first = args.warmup + n * args.block
        start = time.process_time()
        for click in cohort.clicks[first : first + args.block]:
            outcome = one(click)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        per_click[name].append((time.process_time() - start) / args.block * 1e6)
        if n % 2:
            mine, theirs = (per_click["ours"][-1], per_click["Django's"][-1])
            ratios.append(mine / theirs)
    scf.sql._has_init_receivers = ours
    finance.broker_flush(args.broker_url)

    print(f"run {tag}: {args.blocks} blocks of {args.block} clicks, outcomes {outcomes}")
    for name, values in per_click.items():
        shown = " ".join(f"{v:.0f}" for v in values)
        print(f"{name:>9} instances: median {statistics.median(values):.0f} us CPU/click ({shown})")
    won = sum(r < 1 for r in ratios)
    print(
        f"ours / Django's, pair by pair: median {statistics.median(ratios):.3f}, "
        f"ours cheaper in {won} of {len(ratios)} pairs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
