"""Real Celery workers, brokers and the sweeper for the crash and disbursement tests.

A worker is ``celery -A scf worker`` in its own process group, on the pytest test database
(``DATABASE_URL`` built from the test connection) and a test broker. Its settings are
``scf.settings.test`` plus a few lines written to a temporary module (the sandbox bank's faults,
short backoffs and leases); extra environment variables (``SCF_CHAOS_KILL``) go to its
environment, and ``app`` names its Celery app (``chaos.worker`` for the crash tests' worker). This process sends the tasks: the finance service's transaction commits,
``disbursement_queue``'s on-commit hook hands the payment to the relay, which queues
``integrations.disburse_loans`` (a batch), the worker pays.
Beat is played by ``Sweeper``, called from the test's wait loop.

Every test ends with the same proof, ``assert_each_paid_exactly_once``: every loan active, one
transfer per loan at the bank (the end-to-end id is unique there, and the sum paid equals the sum
lent), one disbursement entry per loan, the ledger balanced, and the book check clean.

A test module gets the fixtures by naming them: ``broker = workers.broker``.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
from lending.services.disbursement import end_to_end_id_for, payout_relay
from lending.services.finance import loan_finance
from tests.conftest import REDIS_URL
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.orders.factories import AgentFactory, OrderFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]
CELERY = ROOT / ".venv" / "bin" / "celery"
DEADLINE_SECONDS = 45.0
FAST_RETRIES = {
    "DISBURSEMENT_RETRY_BACKOFF_SECONDS": 0.05,
    "DISBURSEMENT_RETRY_BACKOFF_MAX_SECONDS": 0.5,
    "DISBURSEMENT_MAX_RETRIES": 30,
    "DISBURSEMENT_POLL_SECONDS": 0.2,
}


# --- the broker ------------------------------------------------------------------------------


def _reset_connections(app: Celery) -> None:
    """Forget the app's broker pools (as Celery does after a fork), so the next send connects
    to the current ``broker_url``. kombu keeps the pools themselves, one per broker URL."""
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def sending_to(url: str) -> Iterator[Celery]:
    """This process sends tasks to the broker at ``url`` instead of running them in-process."""
    app = scf.celery.app
    saved = {"broker_url": app.conf.broker_url, "task_always_eager": app.conf.task_always_eager}
    _reset_connections(app)
    app.conf.broker_url = url
    app.conf.task_always_eager = False
    try:
        yield app
    finally:
        payout_relay().flush()  # payments queued by this test go to this test's broker
        _reset_connections(app)
        app.conf.update(saved)


@pytest.fixture
def broker() -> Iterator[Celery]:
    """Tasks go to the test Redis database (flushed before and after)."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    try:
        with sending_to(REDIS_URL) as app:
            yield app
    finally:
        client.flushdb()
        client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A ``redis-server`` of our own (no persistence: a restart loses every message), so a test
    can kill and restart it without touching the shared Redis."""

    def __init__(self, tmp_path: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.tmp_path = tmp_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        command = [
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.tmp_path),
        ]  # fmt: skip
        log = (self.tmp_path / f"redis-{self.port}.log").open("ab")
        self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def freeze(self) -> None:
        """SIGSTOP: the socket stays open and the kernel still completes connections, but
        nothing answers (a hung server, not a dead one)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)


# --- the worker ------------------------------------------------------------------------------


def database_url() -> str:
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{quote(db['USER'], safe='')}{password}@{host}:{port}/{db['NAME']}"


def django_env(**extra: str) -> dict[str, str]:
    """The environment of a Django process of ours on the test database and broker."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "scf.settings.test",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        **extra,
    }


class Worker:
    """One ``celery worker`` process group on the test database and a test broker."""

    def __init__(
        self,
        tmp_path: Path,
        settings: dict[str, Any],
        concurrency: int = 2,
        *,
        broker_url: str = "",
        env: dict[str, str] | None = None,
        app: str = "scf",
    ) -> None:
        self.tmp_path = tmp_path
        self.app = app
        self.settings = settings
        self.concurrency = concurrency
        self.broker_url = broker_url or REDIS_URL
        self.env = env or {}
        self.name = f"disb-{uuid.uuid4().hex[:8]}"
        self.log_path = tmp_path / f"worker-{self.name}.log"
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
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": self.broker_url,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            **self.env,
        }
        command = [
            str(CELERY), "-A", self.app, "worker", "-P", "prefork", "-c", str(self.concurrency),
            "--without-heartbeat", "--without-gossip", "--without-mingle",
            "-n", f"{self.name}@%h", "--loglevel", "INFO",
        ]  # fmt: skip
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the worker's whole process group (main process and pool children)."""
        if self.proc is None:
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

    def kill_main(self) -> None:
        """SIGKILL the main process only: its pool children are orphaned mid-task (they finish
        or die on their own; ``kill`` at teardown ends any that remain)."""
        if self.alive():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(timeout=15)

    def restart(self) -> Worker:
        """A new main process with the same name, settings and log (after ``kill``)."""
        self.kill()
        return self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def start_worker(broker: Celery, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start workers with given settings; every one is stopped (process group) at teardown,
    before the test database is flushed."""
    workers: list[Worker] = []

    def start(settings: dict[str, Any], concurrency: int = 2, **kwargs: Any) -> Worker:
        worker = Worker(tmp_path, settings, concurrency, **kwargs).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.kill(signal.SIGTERM)
    connection.close()


class Sweeper:
    """Beat's job, called from a wait loop: send ``integrations.disbursement_sweeper`` every
    ``every`` seconds (``min_age_seconds=None``: the worker's own setting). A broker that is down
    is beat's problem too: the send is skipped."""

    def __init__(self, app: Celery, every: float = 1.0, min_age_seconds: float | None = 0) -> None:
        self.app = app
        self.every = every
        self.min_age_seconds = min_age_seconds
        self.last = 0.0
        self.sent = 0

    def __call__(self) -> None:
        if time.monotonic() - self.last < self.every:
            return
        self.last = time.monotonic()
        try:
            kwargs = (
                {} if self.min_age_seconds is None else {"min_age_seconds": self.min_age_seconds}
            )
            self.app.send_task("integrations.disbursement_sweeper", kwargs=kwargs, retry=False)
            self.sent += 1
        except Exception:  # the broker is down; beat would try again too
            _reset_connections(self.app)


# --- loans -----------------------------------------------------------------------------------


def agent_users(count: int) -> list[Any]:
    program = ProgramFactory(limit=Decimal("100000000.00"))
    users = []
    for _ in range(count):
        agent = AgentFactory(enterprises=[program.enterprise])
        CreditLineFactory(agent=agent, program=program, limit=Decimal("5000000.00"))
        users.append(UserFactory(role="agent", agent=agent))
    return users


def approve_loans(count: int, agents: int = 10) -> list[int]:
    """Finance ``count`` orders through the finance service, each in its own transaction that
    also records the disbursement (the finance service does; on commit the payment goes to the
    relay). Returns when the relay has sent every payment to the broker."""
    users = agent_users(agents)
    loan_ids = []
    for i in range(count):
        user = users[i % agents]
        order = OrderFactory(agent=user.agent, enterprise=user.agent.enterprises.first())
        with transaction.atomic():
            loan = loan_finance(user=user, order_id=order.pk)
        assert loan.status == LoanStatus.DISBURSING
        loan_ids.append(loan.pk)
    assert payout_relay().flush(30)
    return loan_ids


def queued_payments(url: str) -> list[int]:
    """The disbursement ids in the payment messages waiting on the broker's default queue:
    batches from the relay (``disburse_loans``) and single payments (``disburse_loan``)."""
    ids: list[int] = []
    for raw in redis.Redis.from_url(url).lrange("celery", 0, -1):
        message = json.loads(raw)
        args = json.loads(base64.b64decode(message["body"]))[0]
        task = message["headers"]["task"]
        if task == "integrations.disburse_loans":
            ids.extend(args[0])
        elif task == "integrations.disburse_loan":
            ids.append(args[0])
    return ids


def disbursement_ids(loan_ids: list[int]) -> list[int]:
    return sorted(Disbursement.objects.filter(loan_id__in=loan_ids).values_list("pk", flat=True))


def loan_states(loan_ids: list[int]) -> dict[str, int]:
    return dict(Loan.objects.filter(pk__in=loan_ids).values_list("status").annotate(n=Count("id")))


def wait_until_active(
    loan_ids: list[int],
    worker: Worker,
    *,
    tick: Callable[[], None] | None = None,
    deadline: float = DEADLINE_SECONDS,
) -> float:
    """Seconds until every loan is active; fails with the worker's log after the deadline."""
    start = time.monotonic()
    while time.monotonic() - start < deadline:
        if tick is not None:
            tick()
        active = Loan.objects.filter(pk__in=loan_ids, status=LoanStatus.ACTIVE).count()
        if active == len(loan_ids):
            return time.monotonic() - start
        time.sleep(0.25)
    pytest.fail(
        f"not all loans active after {deadline}s: {loan_states(loan_ids)}\n{worker.log()[-4000:]}"
    )


def bank_requests(loan_ids: list[int]) -> dict[str, int]:
    """Transfer requests the bank received, per end-to-end id (repeats included)."""
    return dict(
        SandboxTransfer.objects.filter(
            end_to_end_id__in=[end_to_end_id_for(pk) for pk in loan_ids]
        ).values_list("end_to_end_id", "requests_received")
    )


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
