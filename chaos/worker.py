"""The crash tests' Celery worker: its pool processes kill themselves at points of a payment.

Run it as ``celery -A chaos.worker worker -P prefork ...`` (the repository root on
``PYTHONPATH``): the project's own Celery app, and in each prefork pool process, once it has
started (``worker_process_init``), wrappers around the payment path that SIGKILL the process at a
chosen point. Production code carries no hook: a worker started with ``-A scf`` has none of this.
``tests/reliability/test_worker_kill.py`` (and so ``chaos/worker_kill.sh``) and ``chaos/soak.py``
start their workers this way.

Off unless the worker's environment sets ``SCF_CHAOS_KILL``, a comma-separated list of
``point:probability``, e.g. ``before_bank:0.3,after_bank:0.3,after_commit:0.3``. The points, and
the name each wrapper replaces in the pool process:

* ``before_bank``: the lease is taken, the bank not yet called (the bank adapter's
  ``initiate_transfer``, before the call, on a disbursement's first lease);
* ``after_bank``: the bank accepted the transfer, nothing written about it yet (the same, after
  the call returned);
* ``after_commit``: the settlement is committed, the task has not returned (with ``acks_late``
  the message is not acknowledged yet): ``disbursement_execute`` as the tasks call it, after it
  returned ``settled``.

Each disbursement draws one point (or none) from those probabilities, by a random number seeded
with ``SCF_CHAOS_SEED`` and its id, and the process dies there the first time the disbursement
gets there (its first lease, or the attempt that settles it), by ``SIGKILL``: no ``finally``, no
rollback, no ack, as when the kernel's OOM killer strikes. The prefork parent replaces the process
and, with ``task_reject_on_worker_lost``, puts the message back. ``SCF_CHAOS_LOG`` names a file
that gets one line per kill (``point disbursement_id pid``) for the test to count.
"""

from __future__ import annotations

import os
import random
import signal
from functools import cache
from typing import Any

from celery.signals import worker_process_init

from scf.celery import app

__all__ = ["POINTS", "app", "chosen_point"]

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


def chaos_kill(point: str, disbursement_id: int) -> None:
    """Die here (SIGKILL) if the chaos plan says this disbursement's worker dies at ``point``."""
    spec = os.environ.get("SCF_CHAOS_KILL", "")
    if not spec:
        return
    if chosen_point(disbursement_id, spec, os.environ.get("SCF_CHAOS_SEED", "0")) != point:
        return
    log = os.environ.get("SCF_CHAOS_LOG")
    if log:
        with open(log, "a", encoding="ascii") as handle:
            handle.write(f"{point} {disbursement_id} {os.getpid()}\n")
    os.kill(os.getpid(), signal.SIGKILL)


# The disbursement this pool process holds the lease of (id, attempts): a pool process works one
# payment at a time, and every bank transfer it sends is for the lease it took last.
_held: dict[str, int] = {}


class _KillingBank:
    """The configured bank adapter, with the two bank-side points around ``initiate_transfer``."""

    def __init__(self, bank: Any) -> None:
        self._bank = bank

    def __getattr__(self, name: str) -> Any:
        return getattr(self._bank, name)

    def initiate_transfer(self, request: Any) -> Any:
        first = _held.get("attempts") == 1
        if first:
            chaos_kill("before_bank", _held["id"])
        receipt = self._bank.initiate_transfer(request)
        if first:
            chaos_kill("after_bank", _held["id"])
        return receipt


def install(**_: Any) -> None:
    """Wrap the payment path of this pool process (``worker_process_init``)."""
    from integrations import tasks
    from integrations.bank import disbursement
    from integrations.bank.disbursement import Outcome

    lease, adapter_for, execute = (
        disbursement.disbursement_lease,
        disbursement.bank_adapter_for,
        tasks.disbursement_execute,
    )

    def leasing(**kwargs: Any) -> Any:
        taken = lease(**kwargs)
        if taken is not None:
            _held.update(id=taken.pk, attempts=taken.attempts)
        return taken

    def executing(disbursement_id: int, **kwargs: Any) -> Any:
        execution = execute(disbursement_id, **kwargs)
        if execution.outcome is Outcome.SETTLED:
            chaos_kill("after_commit", disbursement_id)
        return execution

    disbursement.disbursement_lease = leasing
    disbursement.bank_adapter_for = lambda bank_code: _KillingBank(adapter_for(bank_code))
    tasks.disbursement_execute = executing


worker_process_init.connect(install, weak=False)
