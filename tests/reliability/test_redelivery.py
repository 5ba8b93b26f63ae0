"""Scenario 9: a bank call stalls for longer than Redis's visibility timeout.

Redis hands an unacknowledged message out again once its visibility timeout has passed (kombu's
``restore_visible``, run by every consumer). Here the timeout is 2 s (checked every second) and
the sandbox bank takes 8 s to answer, so while worker A is stuck in the bank call the message is
redelivered to worker B. B cannot take the disbursement's lease (60 s, held by A) and returns
``busy`` without calling the bank; A's call completes and settles. One request at the bank, one
lease taken, one payment.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest

from lending.models import Disbursement, Loan, LoanStatus
from tests.reliability import workers
from tests.reliability.workers import (
    FAST_RETRIES,
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

STALL_MS = 8000
SETTINGS = {
    "SANDBOX_BANK": {"latency_ms": STALL_MS},
    "DISBURSEMENT_LEASE_SECONDS": 60,
    "CELERY_BROKER_TRANSPORT_OPTIONS": {
        "visibility_timeout": 2,
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    },
    **FAST_RETRIES,
}
# The payment's message is a batch from the web process's relay (of one loan here).
RECEIVED = re.compile(r"Task integrations\.disburse_loans\[([0-9a-f-]+)\] received")


def _wait_for(condition: Callable[[], object], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_a_message_redelivered_during_a_stalled_bank_call_makes_no_second_call(start_worker):
    first = start_worker(SETTINGS, concurrency=1)
    [loan_id] = approve_loans(1, agents=1)
    assert _wait_for(lambda: RECEIVED.search(first.log()), 20), first.log()[-3000:]
    [task_id] = RECEIVED.findall(first.log())
    second = start_worker(SETTINGS, concurrency=1)
    busy = f"disburse_loans[{task_id}] succeeded"
    assert _wait_for(lambda: busy in second.log(), STALL_MS / 1000), second.log()[-3000:]
    # B got the same message while A was still inside the bank call, and did nothing.
    assert Loan.objects.get(pk=loan_id).status == LoanStatus.DISBURSING
    assert re.search(
        rf"disburse_loans\[{task_id}\] succeeded in [0-9.]+s: \['busy'\]", second.log()
    )

    wait_until_active([loan_id], first)
    assert_each_paid_exactly_once([loan_id])
    assert bank_requests([loan_id]) == {Disbursement.objects.get().end_to_end_id: 1}
    assert Disbursement.objects.get().attempts == 1  # B never got the lease
