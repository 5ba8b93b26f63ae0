"""Disbursement through a real Celery worker on the real Redis broker, against PostgreSQL.

The worker is ``celery -A scf worker`` in its own process group, on the pytest test database
and the test Redis database (flushed before and after); see ``tests.reliability.workers``, which
starts it (its settings are ``scf.settings.test`` plus the sandbox bank's faults, short backoffs
and leases). This process sends the tasks: the finance service's transaction commits,
``disbursement_request``'s on-commit hook queues ``integrations.disburse_loan`` on Redis, the
worker pays.

Every test ends with the same proof: every loan active, one transfer per loan at the bank (the
end-to-end id is unique there, and the sum paid equals the sum lent), one disbursement entry per
loan, the ledger balanced, and the book check clean.
"""

from __future__ import annotations

import signal
import time

import pytest
import redis

from integrations.models import SandboxTransfer
from lending.models import Disbursement, Loan, LoanStatus
from tests.conftest import REDIS_URL
from tests.reliability import workers
from tests.reliability.workers import (
    FAST_RETRIES,
    approve_loans,
    assert_each_paid_exactly_once,
    wait_until_active,
)

broker = workers.broker  # fixtures
start_worker = workers.start_worker

pytestmark = [
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

LOANS = 200


# --- the tests -------------------------------------------------------------------------------


def test_two_hundred_loans_are_each_paid_exactly_once_by_a_real_worker(start_worker):
    worker = start_worker({"SANDBOX_BANK": {}, **FAST_RETRIES})
    loan_ids = approve_loans(LOANS)
    wait_until_active(loan_ids, worker)
    assert_each_paid_exactly_once(loan_ids)
    assert set(SandboxTransfer.objects.values_list("requests_received", flat=True)) == {1}
    assert set(Disbursement.objects.values_list("attempts", flat=True)) == {1}


def test_timeouts_duplicates_and_outages_still_pay_exactly_once(start_worker):
    faults = {
        "timeout_after_accept_rate": 0.3,
        "duplicate_reply_rate": 0.3,
        "unavailable_rate": 0.2,
        "seed": 20260302,
    }
    worker = start_worker({"SANDBOX_BANK": faults, **FAST_RETRIES})
    loan_ids = approve_loans(LOANS)
    wait_until_active(loan_ids, worker)
    assert_each_paid_exactly_once(loan_ids)
    # After a timeout the retry asked the bank and never re-sent: one request per transfer.
    assert set(SandboxTransfer.objects.values_list("requests_received", flat=True)) == {1}
    errors = list(Disbursement.objects.values_list("last_error", flat=True))
    assert sum("BankTimeout" in e for e in errors) > 10
    assert sum("BankUnavailable" in e for e in errors) > 10
    assert Disbursement.objects.filter(attempts__gt=1).count() > 20
    # The bank's duplicate replies arrived as status reports, and the worker applied them.
    assert worker.log().count("Task integrations.bank_status_report[") > 10


def test_messages_lost_with_the_broker_are_recovered_by_the_sweeper(start_worker, broker):
    loan_ids = approve_loans(100)  # queued on Redis with no worker running...
    redis.Redis.from_url(REDIS_URL).flushdb()  # ...and lost
    worker = start_worker({"SANDBOX_BANK": {}, **FAST_RETRIES})
    time.sleep(2)
    assert Loan.objects.filter(pk__in=loan_ids, status=LoanStatus.DISBURSING).count() == 100
    broker.send_task("integrations.disbursement_sweeper", kwargs={"min_age_seconds": 0})
    wait_until_active(loan_ids, worker)
    assert_each_paid_exactly_once(loan_ids)
    assert set(SandboxTransfer.objects.values_list("requests_received", flat=True)) == {1}


def test_a_worker_killed_mid_payment_never_pays_twice(start_worker, broker):
    slow = {"SANDBOX_BANK": {"latency_ms": 100}, "DISBURSEMENT_LEASE_SECONDS": 2, **FAST_RETRIES}
    loan_ids = approve_loans(100)  # queued before any worker runs
    first = start_worker(slow)
    deadline = time.monotonic() + 30
    while SandboxTransfer.objects.count() < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    first.kill(signal.SIGKILL)  # in the middle of bank calls, with tasks unacknowledged
    paid_before = Loan.objects.filter(pk__in=loan_ids, status=LoanStatus.ACTIVE).count()
    assert 0 < paid_before < 100
    second = start_worker(slow)
    last_sweep = [0.0]

    def sweep() -> None:
        """The beat's job, every two seconds: re-dispatch what has no live lease."""
        if time.monotonic() - last_sweep[0] >= 2:
            broker.send_task("integrations.disbursement_sweeper", kwargs={"min_age_seconds": 0})
            last_sweep[0] = time.monotonic()

    wait_until_active(loan_ids, second, tick=sweep)
    assert_each_paid_exactly_once(loan_ids)
    assert max(SandboxTransfer.objects.values_list("requests_received", flat=True)) == 1
    assert Disbursement.objects.filter(attempts__gt=1).exists()
