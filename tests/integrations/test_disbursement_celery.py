"""Disbursement through a real Celery worker on the real Redis broker, against PostgreSQL.

The worker is ``celery -A scf worker`` in its own process group, on the pytest test database
(``DATABASE_URL`` built from the test connection) and the test Redis database (flushed before and
after). Its settings are ``scf.settings.test`` plus a few lines written to a temporary module
(the sandbox bank's faults, short backoffs and leases). This process sends the tasks: the finance
service's transaction commits, ``disbursement_request``'s on-commit hook queues
``integrations.disburse_loan`` on Redis, the worker pays.

Every test ends with the same proof: every loan active, one transfer per loan at the bank (the
end-to-end id is unique there, and the sum paid equals the sum lent), one disbursement entry per
loan, the ledger balanced, and the book check clean.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from celery import Celery
from django.db import connection, transaction
from django.db.models import Count, Sum

import scf.celery
from integrations.models import SandboxTransfer
from lending.models import (
    CreditLine,
    Disbursement,
    EntryKind,
    JournalEntry,
    JournalLine,
    Loan,
    LoanStatus,
    Program,
)
from lending.services.book_check import book_check
from lending.services.disbursement import end_to_end_id_for
from lending.services.finance import loan_finance
from tests.conftest import REDIS_URL
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.orders.factories import AgentFactory, OrderFactory, UserFactory

pytestmark = [
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

ROOT = Path(__file__).resolve().parents[2]
CELERY = ROOT / ".venv" / "bin" / "celery"
LOANS = 200
DEADLINE_SECONDS = 45.0
FAST_RETRIES = {
    "DISBURSEMENT_RETRY_BACKOFF_SECONDS": 0.05,
    "DISBURSEMENT_RETRY_BACKOFF_MAX_SECONDS": 0.5,
    "DISBURSEMENT_MAX_RETRIES": 30,
    "DISBURSEMENT_POLL_SECONDS": 0.2,
}


# --- the broker and the worker ---------------------------------------------------------------


def _reset_connections(app: Celery) -> None:
    """Forget the app's broker pools (as Celery does after a fork), so the next send connects
    to the current ``broker_url``. kombu keeps the pools themselves, one per broker URL."""
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker() -> Iterator[Celery]:
    """This process sends tasks to the test Redis database (flushed) instead of running them."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    app = scf.celery.app
    saved = {"broker_url": app.conf.broker_url, "task_always_eager": app.conf.task_always_eager}
    _reset_connections(app)
    app.conf.broker_url = REDIS_URL
    app.conf.task_always_eager = False
    try:
        yield app
    finally:
        _reset_connections(app)
        app.conf.update(saved)
        client.flushdb()
        client.close()


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{quote(db['USER'], safe='')}{password}@{host}:{port}/{db['NAME']}"


class Worker:
    """One ``celery worker`` process group on the test database and broker."""

    def __init__(self, tmp_path: Path, settings: dict[str, Any], concurrency: int = 2) -> None:
        self.tmp_path = tmp_path
        self.settings = settings
        self.concurrency = concurrency
        self.log_path = tmp_path / f"worker-{uuid.uuid4().hex[:8]}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _settings_module(self) -> str:
        name = f"disb_worker_settings_{uuid.uuid4().hex[:8]}"
        lines = ["from scf.settings.test import *  # noqa: F403"]
        lines += [f"{key} = {value!r}" for key, value in self.settings.items()]
        (self.tmp_path / f"{name}.py").write_text("\n".join(lines) + "\n")
        return name

    def start(self) -> Worker:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": self._settings_module(),
            "PYTHONPATH": os.pathsep.join([str(self.tmp_path), str(ROOT)]),
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": REDIS_URL,
            "CELERY_TASK_ALWAYS_EAGER": "false",
        }
        command = [
            str(CELERY), "-A", "scf", "worker", "-P", "prefork", "-c", str(self.concurrency),
            "--without-heartbeat", "--without-gossip", "--without-mingle",
            "-n", f"disb-{uuid.uuid4().hex[:8]}@%h", "--loglevel", "INFO",
        ]  # fmt: skip
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the worker's whole process group (main process and pool children)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def start_worker(broker: Celery, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start workers with given settings; every one is stopped (process group) at teardown,
    before the test database is flushed."""
    workers: list[Worker] = []

    def start(settings: dict[str, Any], concurrency: int = 2) -> Worker:
        worker = Worker(tmp_path, settings, concurrency).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.kill(signal.SIGTERM)
    connection.close()


# --- loans -----------------------------------------------------------------------------------


def _agents(count: int) -> list[Any]:
    program = ProgramFactory(limit=Decimal("100000000.00"))
    users = []
    for _ in range(count):
        agent = AgentFactory(enterprises=[program.enterprise])
        CreditLineFactory(agent=agent, program=program, limit=Decimal("5000000.00"))
        users.append(UserFactory(role="agent", agent=agent))
    return users


def approve_loans(count: int, agents: int = 10) -> list[int]:
    """Finance ``count`` orders through the finance service, each in its own transaction that
    also records the disbursement (the finance service does; the task is queued on commit)."""
    users = _agents(agents)
    loan_ids = []
    for i in range(count):
        user = users[i % agents]
        order = OrderFactory(agent=user.agent, enterprise=user.agent.enterprises.first())
        with transaction.atomic():
            loan = loan_finance(user=user, order_id=order.pk)
        assert loan.status == LoanStatus.DISBURSING
        loan_ids.append(loan.pk)
    return loan_ids


def wait_until_active(
    loan_ids: list[int], worker: Worker, *, tick: Callable[[], None] | None = None
) -> float:
    """Seconds until every loan is active; fails with the worker's log after the deadline."""
    start = time.monotonic()
    while time.monotonic() - start < DEADLINE_SECONDS:
        if tick is not None:
            tick()
        active = Loan.objects.filter(pk__in=loan_ids, status=LoanStatus.ACTIVE).count()
        if active == len(loan_ids):
            return time.monotonic() - start
        time.sleep(0.25)
    states = dict(
        Loan.objects.filter(pk__in=loan_ids).values_list("status").annotate(n=Count("id"))
    )
    pytest.fail(f"not all loans active after {DEADLINE_SECONDS}s: {states}\n{worker.log()[-4000:]}")


def assert_each_paid_exactly_once(loan_ids: list[int]) -> None:
    loans = Loan.objects.filter(pk__in=loan_ids)
    assert loans.filter(status=LoanStatus.ACTIVE).count() == len(loan_ids)
    principal = loans.aggregate(total=Sum("principal"))["total"]
    transfers = SandboxTransfer.objects.filter(
        end_to_end_id__in=[end_to_end_id_for(pk) for pk in loan_ids]
    )
    per_id = transfers.values("end_to_end_id").annotate(n=Count("id"))
    assert len(per_id) == len(loan_ids) and {row["n"] for row in per_id} == {1}
    assert transfers.filter(status="settled").count() == len(loan_ids)
    assert transfers.aggregate(total=Sum("amount"))["total"] == principal
    entries = JournalEntry.objects.filter(kind=EntryKind.DISBURSEMENT, loan_id__in=loan_ids)
    per_loan = entries.values("loan_id").annotate(n=Count("id"))
    assert len(per_loan) == len(loan_ids) and {row["n"] for row in per_loan} == {1}
    totals = JournalLine.objects.aggregate(dr=Sum("debit"), cr=Sum("credit"))
    assert totals["dr"] == totals["cr"] == principal
    assert Disbursement.objects.filter(loan_id__in=loan_ids, status="settled").count() == len(
        loan_ids
    )
    assert CreditLine.objects.aggregate(r=Sum("reserved"), o=Sum("outstanding_principal")) == {
        "r": Decimal("0.00"),
        "o": principal,
    }
    assert Program.objects.aggregate(r=Sum("reserved"))["r"] == Decimal("0.00")
    assert book_check() == []


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
