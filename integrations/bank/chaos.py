"""Fault injection for the crash tests: kill the Celery pool process at a point of a payment.

Off unless the worker's environment sets ``SCF_CHAOS_KILL``, a comma-separated list of
``point:probability``, e.g. ``before_bank:0.3,after_bank:0.3,after_commit:0.3``. The points:

* ``before_bank``: the lease is taken, the bank not yet called;
* ``after_bank``: the bank accepted the transfer, nothing written about it yet;
* ``after_commit``: the settlement is committed, the task has not returned (with ``acks_late``
  the message is not acknowledged yet).

Each disbursement draws one point (or none) from those probabilities, by a random number seeded
with ``SCF_CHAOS_SEED`` and its id, and the process dies there the first time the disbursement
gets there (its first lease, or the attempt that settles it), by ``SIGKILL``: no ``finally``, no
rollback, no ack, as when the kernel's OOM killer strikes. The prefork parent replaces the process
and, with ``task_reject_on_worker_lost``, puts the message back. ``SCF_CHAOS_LOG`` names a file
that gets one line per kill (``point disbursement_id pid``) for the test to count.

Only a prefork pool process ever kills itself: in a web process, a shell or an eager test the
hook does nothing, whatever the environment says.
"""

from __future__ import annotations

import os
import random
import signal
from functools import cache

from billiard.process import current_process

POINTS = ("before_bank", "after_bank", "after_commit")


@cache
def _plan(spec: str) -> tuple[tuple[str, float], ...]:
    plan = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        point, _, probability = part.partition(":")
        if point not in POINTS:
            raise ValueError(f"SCF_CHAOS_KILL: unknown point {point!r} (one of {POINTS})")
        plan.append((point, float(probability or 1)))
    if sum(p for _, p in plan) > 1:
        raise ValueError("SCF_CHAOS_KILL: the probabilities add up to more than 1")
    return tuple(plan)


def chosen_point(disbursement_id: int, spec: str, seed: str) -> str | None:
    """The point where this disbursement's worker dies, or None: the same on every process."""
    draw = random.Random(f"{seed}:{disbursement_id}").random()
    edge = 0.0
    for point, probability in _plan(spec):
        edge += probability
        if draw < edge:
            return point
    return None


def _in_pool_process() -> bool:
    return current_process().name.startswith("ForkPoolWorker")


def chaos_kill(point: str, disbursement_id: int) -> None:
    """Die here (SIGKILL) if the chaos plan says this disbursement's worker dies at ``point``."""
    spec = os.environ.get("SCF_CHAOS_KILL", "")
    if not spec or not _in_pool_process():
        return
    if chosen_point(disbursement_id, spec, os.environ.get("SCF_CHAOS_SEED", "0")) != point:
        return
    log = os.environ.get("SCF_CHAOS_LOG")
    if log:
        with open(log, "a", encoding="ascii") as handle:
            handle.write(f"{point} {disbursement_id} {os.getpid()}\n")
    os.kill(os.getpid(), signal.SIGKILL)
