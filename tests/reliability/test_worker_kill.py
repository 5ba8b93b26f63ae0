"""Scenario 4: a worker killed (SIGKILL) at any point of a payment never pays twice or loses one.

The fault is injected in the worker itself (the crash tests' worker, ``celery -A chaos.worker``,
whose pool processes wrap the payment path; switched on by ``SCF_CHAOS_KILL`` in its environment): each disbursement draws one point, before
the bank call (lease taken), after the bank call before anything is committed, or after the
settlement is committed but before the message is acknowledged, and its pool process SIGKILLs
itself there. The prefork parent replaces it; with ``acks_late`` and
``task_reject_on_worker_lost`` the message goes back on the queue; a lease held by the dead
process runs out (2 s here) and the sweeper (every second here, as beat would) sends the
disbursement again.

Per run (one disbursement): one transfer at the bank, one request received by the bank, one
disbursement entry in the ledger, nothing left disbursing. ``SCF_CHAOS_RUNS`` (default 100) sets
the number of runs; ``chaos/worker_kill.sh`` runs 1,000.

The second test kills the whole worker (its main process) three times mid-flight and starts a new
one each time; the orphaned pool processes finish or die on their own.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from chaos.worker import POINTS
from integrations.models import SandboxTransfer
from lending.models import Disbursement, Loan, LoanStatus
from lending.services.disbursement import WORKING
from tests.reliability import workers
from tests.reliability.workers import (
    FAST_RETRIES,
    Sweeper,
    approve_loans,
    assert_each_paid_exactly_once,
    bank_requests,
    wait_until_active,
)

pytestmark = [
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

broker = workers.broker  # fixtures
start_worker = workers.start_worker

RUNS = int(os.environ.get("SCF_CHAOS_RUNS", "100"))
KILL_PLAN = "before_bank:0.3,after_bank:0.3,after_commit:0.3"  # and 10 % not killed
CRASH_SETTINGS = {"SANDBOX_BANK": {}, "DISBURSEMENT_LEASE_SECONDS": 2, **FAST_RETRIES}


def _kills(log: Path) -> list[tuple[str, int]]:
    if not log.exists():
        return []
    return [(p, int(d)) for p, d, _pid in (line.split() for line in log.read_text().splitlines())]


def _deaths(pair: list[Any]) -> int:
    """Pool processes the workers saw die of SIGKILL."""
    return sum(w.log().count("exited with 'signal 9 (SIGKILL)'") for w in pair)


def test_a_worker_killed_at_a_random_point_of_each_payment_pays_exactly_once(
    start_worker, broker, tmp_path
):
    log = tmp_path / "kills.log"
    seed = str(random.randrange(10**9))
    chaos = {"SCF_CHAOS_KILL": KILL_PLAN, "SCF_CHAOS_SEED": seed, "SCF_CHAOS_LOG": str(log)}
    # Two workers: a pool process takes about a second to be replaced and its message to come
    # back, so two main processes halve the time the runs take.
    pair = [start_worker(CRASH_SETTINGS, env=chaos, app="chaos.worker") for _ in range(2)]
    loan_ids = approve_loans(RUNS)
    seconds = wait_until_active(
        loan_ids, pair[0], tick=Sweeper(broker, every=1.0, min_age_seconds=2), deadline=30 + RUNS
    )

    assert_each_paid_exactly_once(loan_ids)
    # Bank side: one request per end-to-end id, whatever died where.
    assert set(bank_requests(loan_ids).values()) == {1}, f"seed {seed}"
    kills = _kills(log)
    per_point = Counter(point for point, _ in kills)
    print(f"\n{RUNS} runs in {seconds:.1f}s, seed {seed}, kills per point: {dict(per_point)}")
    # The kills really happened, at every point, each disbursement at most once.
    assert len({d for _, d in kills}) == len(kills)
    assert all(per_point[point] >= RUNS * 0.15 for point in POINTS), per_point
    # (an after-commit kill can land after its loan is seen active: give the log a moment)
    deadline = time.monotonic() + 10
    while _deaths(pair) < len(kills) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _deaths(pair) == len(kills)
    # A process killed before or after the bank call held the lease: the sweeper took it up.
    killed_holding = [d for p, d in kills if p != "after_commit"]
    attempts = dict(
        Disbursement.objects.filter(pk__in=killed_holding).values_list("pk", "attempts")
    )
    assert min(attempts.values()) >= 2


def _in_flight(loan_ids: list[int]) -> set[int]:
    """Disbursements a worker holds right now: leased, not yet settled or failed."""
    return set(
        Disbursement.objects.filter(
            loan_id__in=loan_ids, status__in=WORKING, lease_until__isnull=False
        ).values_list("pk", flat=True)
    )


def test_the_whole_worker_killed_three_times_and_restarted_pays_exactly_once(start_worker, broker):
    slow = {"SANDBOX_BANK": {"latency_ms": 60}, **CRASH_SETTINGS}
    loan_ids = approve_loans(60)  # queued before any worker runs
    sweeper = Sweeper(broker, every=1.0, min_age_seconds=0)
    worker = start_worker(slow)
    abandoned: set[int] = set()
    kills = 0
    # At least three kills, and until one of them has left a payment half done (timing on a
    # loaded machine decides whether a kill lands mid bank call or between two payments).
    while kills < 3 or (not abandoned and kills < 8):
        target = 7 * (kills + 1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
            SandboxTransfer.objects.count() >= target and _in_flight(loan_ids)
        ):
            time.sleep(0.01)
        worker.kill_main()  # mid bank call, messages unacknowledged, children orphaned
        kills += 1
        time.sleep(0.5)  # orphaned pool processes finish the call they are in, or die
        abandoned |= _in_flight(loan_ids)
        paid = Loan.objects.filter(pk__in=loan_ids, status=LoanStatus.ACTIVE).count()
        assert paid < len(loan_ids), "the kill came too late to test anything"
        worker = start_worker(slow)
    assert abandoned, f"none of {kills} kills left a payment half done"
    wait_until_active(loan_ids, worker, tick=sweeper)
    assert_each_paid_exactly_once(loan_ids)
    assert set(bank_requests(loan_ids).values()) == {1}
    # Work the dead workers held was taken up again (by a lease after theirs ran out).
    attempts = Disbursement.objects.filter(pk__in=abandoned).values_list("attempts", flat=True)
    assert min(attempts) >= 2
