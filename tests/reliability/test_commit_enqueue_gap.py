"""Scenario 8: the web process dies between the commit that approves a loan and the enqueue of
its payment task.

A separate Django process finances orders through the finance service; in each transaction a
callback registered *before* the service's own ``on_commit`` dispatch runs first after the commit
and stops the process there: an exception (which skips the later callbacks, as a crash would)
for all but the last order, and a real ``SIGKILL`` for the last. So every loan is committed
``disbursing`` with its disbursement row, and no task ever reaches Redis. The sweeper (with the
worker's own minimum age, 2 s here, sent every second as beat would) finds them all: no approved
loan is left without its payment.
"""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import redis

from lending.models import Disbursement, Loan, LoanStatus
from tests.conftest import REDIS_URL
from tests.orders.factories import OrderFactory
from tests.reliability import workers
from tests.reliability.workers import (
    FAST_RETRIES,
    ROOT,
    Sweeper,
    agent_users,
    assert_each_paid_exactly_once,
    django_env,
    wait_until_active,
)

pytestmark = [
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

broker = workers.broker  # fixtures
start_worker = workers.start_worker

LOANS = 40
SWEEP_MIN_AGE = 2.0

CRASHING_WEB_PROCESS = """
import os, signal, sys
import django
django.setup()
from django.db import transaction
from lending.services.finance import loan_finance
from orders.models import User

class Crash(Exception):
    pass

def crash():
    raise Crash()

def die():
    os.kill(os.getpid(), signal.SIGKILL)

user = User.objects.get(pk=int(sys.argv[1]))
order_ids = [int(x) for x in sys.argv[2].split(",")]
for n, order_id in enumerate(order_ids):
    try:
        with transaction.atomic():
            transaction.on_commit(die if n == len(order_ids) - 1 else crash)
            loan_finance(user=user, order_id=order_id)
    except Crash:
        pass
"""


def test_loans_committed_without_their_task_are_all_paid_by_the_sweeper(start_worker, broker):
    [user] = agent_users(1)
    orders = [
        OrderFactory(agent=user.agent, enterprise=user.agent.enterprises.first()).pk
        for _ in range(LOANS)
    ]
    web = subprocess.run(
        [sys.executable, "-c", CRASHING_WEB_PROCESS, str(user.pk), ",".join(map(str, orders))],
        cwd=ROOT,
        env=django_env(),
        capture_output=True,
        timeout=120,
    )
    assert web.returncode == -signal.SIGKILL, web.stderr.decode()[-3000:]
    loan_ids = list(Loan.objects.filter(order_id__in=orders).values_list("pk", flat=True))
    assert len(loan_ids) == LOANS  # every loan committed...
    assert Loan.objects.filter(pk__in=loan_ids, status=LoanStatus.DISBURSING).count() == LOANS
    assert redis.Redis.from_url(REDIS_URL).llen("celery") == 0  # ...and no task enqueued

    worker = start_worker(
        {"SANDBOX_BANK": {}, "DISBURSEMENT_SWEEP_MIN_AGE_SECONDS": SWEEP_MIN_AGE, **FAST_RETRIES}
    )
    seconds = wait_until_active(
        loan_ids, worker, tick=Sweeper(broker, every=1.0, min_age_seconds=None), deadline=40
    )
    print(f"\n{LOANS} orphaned loans paid {seconds:.1f}s after the worker started")
    assert_each_paid_exactly_once(loan_ids)
    stranded = Loan.objects.filter(status=LoanStatus.APPROVED, disbursement__isnull=True)
    assert stranded.count() == 0
    assert not Disbursement.objects.exclude(status="settled").exists()
