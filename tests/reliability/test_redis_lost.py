"""Scenario 6: the broker loses every message (flushed, or restarted without persistence) while
500 disbursements are queued. The disbursement rows are the outbox: the sweeper finds every one
that is neither settled nor failed and sends it again, so all 500 are paid, each exactly once,
and none is lost.

The restart runs against a ``redis-server`` of the test's own (a free port, ``--save ""``), so
killing it disturbs no one; the flush empties only the test Redis database.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
import redis
from django.db import transaction

from integrations import tasks
from lending.models import Disbursement, Loan, LoanStatus
from lending.services.disbursement import disbursement_lease
from lending.services.finance import loan_finance
from scf import clock
from tests.conftest import REDIS_URL
from tests.orders.factories import OrderFactory
from tests.reliability import workers
from tests.reliability.workers import (
    FAST_RETRIES,
    RedisServer,
    Sweeper,
    agent_users,
    approve_loans,
    assert_each_paid_exactly_once,
    bank_requests,
    disbursement_ids,
    queued_payments,
    sending_to,
    wait_until_active,
)


def with_workers(test: Any) -> Any:
    """A real worker on a real broker, against PostgreSQL."""
    for mark in (pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)):
        test = mark(test)
    return test


broker = workers.broker  # fixtures
start_worker = workers.start_worker

QUEUED = 500
SETTINGS = {"SANDBOX_BANK": {}, "DISBURSEMENT_LEASE_SECONDS": 2, **FAST_RETRIES}


@pytest.mark.django_db
def test_the_sweeper_sends_a_backlog_once_per_hold_not_at_every_sweep(settings, monkeypatch):
    """Found by the soak: with 700 payments waiting, every sweep (3 s) sent all of them again and
    the queue filled with duplicates faster than the worker could drop them. Now what a sweep
    sends is held out of the next sweeps until its message has had time to arrive."""
    settings.DISBURSEMENT_SWEEP_HOLD_SECONDS = 30
    [user] = agent_users(1)
    for _ in range(3):
        order = OrderFactory(agent=user.agent, enterprise=user.agent.enterprises.first())
        with transaction.atomic():
            loan_finance(user=user, order_id=order.pk)  # its task is never sent: no commit here
    sent: list[int] = []
    monkeypatch.setattr(tasks.disburse_loan, "delay", lambda pk: sent.append(pk))
    ids = sorted(Disbursement.objects.values_list("pk", flat=True))

    def sweep_at(seconds: float) -> int:
        at = start + dt.timedelta(seconds=seconds)
        monkeypatch.setattr(clock, "now", lambda: at)
        return tasks.disbursement_sweeper(min_age_seconds=0)

    start = clock.now()
    assert sweep_at(1) == 3 and sent == ids
    assert sweep_at(4) == 0 and sweep_at(30) == 0  # their messages are on their way
    assert sweep_at(32) == 3 and sent == ids * 2  # lost again: sent again, once
    # A worker takes one (the hold ends with the lease) and dies: as soon as the lease runs
    # out, the next sweep sends it again.
    monkeypatch.setattr(clock, "now", lambda: start + dt.timedelta(seconds=33))
    assert disbursement_lease(disbursement_id=ids[0], seconds=2) is not None
    assert sweep_at(36) == 1 and sent[-1] == ids[0]


@with_workers
def test_five_hundred_queued_payments_flushed_from_redis_are_all_paid_once(start_worker, broker):
    client = redis.Redis.from_url(REDIS_URL)
    loan_ids = approve_loans(QUEUED)  # no worker yet: every message waits on Redis...
    assert sorted(queued_payments(REDIS_URL)) == disbursement_ids(loan_ids)
    client.flushdb()  # ...and is lost
    worker = start_worker(SETTINGS)
    time.sleep(2)
    assert Loan.objects.filter(pk__in=loan_ids, status=LoanStatus.DISBURSING).count() == QUEUED
    seconds = wait_until_active(loan_ids, worker, tick=Sweeper(broker, every=5.0), deadline=90)
    print(f"\n{QUEUED} payments recovered {seconds:.1f}s after the flush")
    assert_each_paid_exactly_once(loan_ids)
    assert set(bank_requests(loan_ids).values()) == {1}


class Supervised:
    """A tick for ``wait_until_active`` that does what the worker's process supervisor does in
    production: start the worker again when it has exited. Celery 5.7 with kombu 5.7 sometimes
    exits on a broker restart instead of reconnecting: when a task's acknowledgement is cut off
    by the restart, restoring the unacknowledged messages fails with ``AttributeError`` on the
    closed connection and the worker stops with "Unrecoverable error" (an upstream race; it
    failed one CI run here, 3 December 2026). The payments must survive that as well: the
    outbox and the sweeper, not the worker's memory, hold them."""

    def __init__(self, worker: workers.Worker, then: Any) -> None:
        self.worker, self.then, self.count = worker, then, 0

    def __call__(self) -> None:
        if not self.worker.alive():
            self.count += 1
            self.worker.start()
        self.then()


@with_workers
def test_five_hundred_queued_payments_survive_a_redis_restart(start_worker, tmp_path):
    server = RedisServer(tmp_path).start()
    try:
        with sending_to(server.url) as app:
            loan_ids = approve_loans(QUEUED)
            assert sorted(queued_payments(server.url)) == disbursement_ids(loan_ids)
            slow = {**SETTINGS, "SANDBOX_BANK": {"latency_ms": 20}}
            worker = start_worker(slow, broker_url=server.url)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                paid = Loan.objects.filter(pk__in=loan_ids, status=LoanStatus.ACTIVE).count()
                if paid >= 50:
                    break
                time.sleep(0.05)
            server.kill()  # every queued and unacknowledged message is gone
            time.sleep(1)
            server.start()  # empty; the worker reconnects on its own
            assert redis.Redis.from_url(server.url).llen("celery") == 0
            assert paid < QUEUED
            sweeper = Sweeper(app, every=5.0)
            restarts = Supervised(worker, sweeper)
            wait_until_active(loan_ids, worker, tick=restarts, deadline=120)
            assert sweeper.sent >= 1
            assert "Connection to broker lost" in worker.log()
            if restarts.count:
                print(f"\nthe worker exited {restarts.count} time(s) and was started again")
    finally:
        server.kill()
    assert_each_paid_exactly_once(loan_ids)
    assert set(bank_requests(loan_ids).values()) == {1}
