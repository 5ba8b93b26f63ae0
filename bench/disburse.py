"""Disbursement benchmark: approved loans paid out through one Celery worker on Redis.

What it measures, against a PostgreSQL database of its own (default ``scf_bench_disburse``) and
the sandbox bank at zero settlement delay and no faults:

1. for each worker concurrency in ``--concurrency`` (one ``celery -A scf worker`` process, prefork
   pool of that many children) and each ``CELERY_DB_REUSE_MAX`` in ``--db-reuse`` (0 is Celery's
   default: its Django fixup closes the database connection before and after every task, so
   each task opens a new one): ``--loans`` approved loans (made by the finance service, each
   with its ``Disbursement`` row; their on-commit dispatch is held back), then, with the worker
   up and answering a ping, every ``integrations.disburse_loan`` message is sent at once and the
   clock runs until the last loan is active. Reports disbursements/s (wall clock from the first
   send to the last settlement seen), the enqueue time, and the same rate from the bank's own
   timestamps (first to last transfer received);
2. in-process floor: ``disbursement_execute`` called directly for ``--floor-loans`` loans, no
   broker, no worker: what the lease, the bank call, the settlement transaction (locks, ledger
   entry, credit consumed, audit) cost by themselves.

After every round it checks the books: each loan active, one transfer per loan at the bank with
one request each, one disbursement entry per loan, debits equal credits, ``book_check`` clean.

Usage (PostgreSQL and Redis on loopback; the database is created and migrated if needed; the
Redis database is flushed)::

    .venv/bin/python -m bench.disburse [--loans 1000] [--concurrency 1,2] [--db-reuse 0,1000]
        [--fresh] [--json out.json]

The worker runs in its own process group and is stopped however the script ends.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

from bench.lib.books import disbursement_books
from bench.lib.db import (
    LOOPBACK,
    ROOT,
    app_env,
    django_setup,
    ensure_database,
    redis_flush,
    scratch_name,
)
from bench.lib.processes import stop_group
from bench.lib.report import write_json
from bench.lib.seeding import agents_seed, program_seed

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/scf_bench_disburse"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/11"
AGENTS = 50
ORDER_AMOUNT = Decimal("10000.00")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.disburse", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="flushed; use your own db")
    parser.add_argument("--loans", type=int, default=1000, help="loans per worker round")
    parser.add_argument("--concurrency", default="1,2", help="worker pool sizes, one round each")
    parser.add_argument("--pool", default="prefork", choices=["prefork", "solo", "threads"])
    parser.add_argument(
        "--prefetch", type=int, default=0, help="worker prefetch multiplier (0: the settings' 1)"
    )
    parser.add_argument(
        "--db-reuse",
        default="0,1000",
        help="CELERY_DB_REUSE_MAX values, one round each per concurrency (0: Celery's default, "
        "a new database connection for every task)",
    )
    parser.add_argument("--floor-loans", type=int, default=500, help="in-process floor loans")
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the database")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="bound on each round")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    args.db_reuse = [int(c) for c in args.db_reuse.split(",") if c.strip()]
    for url in (args.database_url, args.redis_url):
        if (urlsplit(url).hostname or "") not in LOOPBACK:
            parser.error(f"loopback only: {url}")
    scratch_name(args.database_url)  # a scratch database of its own: --fresh drops it
    return args


# --- the worker ------------------------------------------------------------------------------


def process_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment of this process and of the worker: production-like settings, the
    broker on the bench's Redis, no Redis cache."""
    env = app_env(args.database_url, CELERY_BROKER_URL=args.redis_url, PYTHONPATH=str(ROOT))
    env.pop("REDIS_URL", None)
    return env


class Worker:
    """``celery -A scf worker`` in its own session (process group)."""

    def __init__(self, args: argparse.Namespace, concurrency: int, db_reuse: int) -> None:
        self.args = args
        self.concurrency = concurrency
        self.db_reuse = db_reuse
        handle, name = tempfile.mkstemp(prefix="bench-disburse-", suffix=".log")
        os.close(handle)
        self.log = Path(name)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            str(ROOT / ".venv" / "bin" / "celery"), "-A", "scf", "worker",
            "-P", self.args.pool, "-c", str(self.concurrency),
            "--without-heartbeat", "--without-gossip", "--without-mingle",
            "-n", f"bench-disburse-{uuid.uuid4().hex[:6]}@%h", "--loglevel", "WARNING",
        ]  # fmt: skip
        if self.args.prefetch:
            command += ["--prefetch-multiplier", str(self.args.prefetch)]
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                command,
                cwd=ROOT,
                env=self._env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _env(self) -> dict[str, str]:
        """Production settings; with ``db_reuse``, a settings module that adds
        ``CELERY_DB_REUSE_MAX`` (Celery's Django fixup otherwise closes the database connection
        before and after every task)."""
        env = process_env(self.args)
        if self.db_reuse:
            folder = Path(tempfile.mkdtemp(prefix="bench-disburse-"))
            (folder / "bench_disburse_settings.py").write_text(
                "from scf.settings.base import *  # noqa: F403\n"
                f"CELERY_DB_REUSE_MAX = {self.db_reuse}\n"
            )
            env["DJANGO_SETTINGS_MODULE"] = "bench_disburse_settings"
            env["PYTHONPATH"] = os.pathsep.join([str(folder), str(ROOT)])
        return env

    def wait_ready(self, app: Any, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise SystemExit(f"worker exited; log: {self.log}")
            if app.control.ping(timeout=0.5):
                return
        raise SystemExit(f"worker not ready after {timeout}s; log: {self.log}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc, timeout=30)


@contextmanager
def running_worker(
    args: argparse.Namespace, app: Any, concurrency: int, db_reuse: int
) -> Iterator[Worker]:
    worker = Worker(args, concurrency, db_reuse)
    worker.start()
    try:
        worker.wait_ready(app)
        yield worker
    finally:
        worker.stop()


# --- seeding ---------------------------------------------------------------------------------


def seed_parties(tag: str) -> tuple[int, list[Any]]:
    """One enterprise, program and ``AGENTS`` agents with lines and users: (enterprise id, users)."""
    from orders.models import Agent, CoreEnterprise
    from orders.services.parties import uscc_complete

    serial = int(time.time() * 1000) % 10**9
    enterprise = CoreEnterprise.objects.create(
        code=f"BD-CE-{tag}",
        name=f"Bench enterprise {tag}",
        uscc=uscc_complete(f"9131{serial:013d}"),
        settlement_account_name=f"Bench enterprise {tag}",
        settlement_account_no=f"6222{serial:012d}",
        settlement_bank="Demo Bank Shanghai Branch",
    )
    program = program_seed(
        enterprise=enterprise, code=f"BD-{tag}", name=f"Bench {tag}",
        advance_rate=Decimal("0.8"), limit=Decimal("9" * 12), max_principal=Decimal("1000000"),
        annual_rate=Decimal("0.054"), penalty_rate=Decimal("0.081"),
        auto_approve_limit=Decimal("500000"), maker_checker_threshold=Decimal("200000"),
    )  # fmt: skip
    seeded = agents_seed(
        enterprise=enterprise,
        program_id=program.pk,
        agents=[
            Agent(
                code=f"BD-AG-{tag}-{i}",
                name=f"Bench agent {i}",
                uscc=uscc_complete(f"9132{serial + i + 1:013d}"),
            )
            for i in range(AGENTS)
        ],
        limit=lambda k: Decimal("9" * 11),
        risk_grade="B",
        users=True,
    )
    return enterprise.pk, [s.user for s in seeded]


def seed_loans(count: int) -> list[int]:
    """``count`` approved loans through the finance service, each with its disbursement row;
    the on-commit dispatch is held back. Returns the disbursement ids."""
    from django.db import transaction

    from lending.models import Disbursement
    from lending.services.finance import loan_finance
    from orders.models import SalesOrder
    from scf import clock

    tag = uuid.uuid4().hex[:8]
    enterprise_id, users = seed_parties(tag)
    today = clock.business_date("Asia/Shanghai")
    now = clock.now()
    orders = SalesOrder.objects.bulk_create(
        SalesOrder(
            enterprise_id=enterprise_id,
            agent_id=users[i % AGENTS].agent_id,
            external_id=f"BD-{tag}-{i}",
            amount=ORDER_AMOUNT,
            currency="CNY",
            status="confirmed",
            order_date=today,
            version=1,
            created_at=now,
            updated_at=now,
        )
        for i in range(count)
    )
    ids = []
    with mock.patch("lending.services.disbursement.enqueue_on_commit", lambda *a, **k: None):
        for i, order in enumerate(orders):
            with transaction.atomic():
                loan = loan_finance(user=users[i % AGENTS], order_id=order.pk)
                # An approved loan leaves the finance service already disbursing, its payment
                # recorded (the outbox row the worker works from); the dispatch is held back.
                if loan.status != "disbursing":
                    raise SystemExit(f"seed loan not approved: {loan.status}")
                ids.append(Disbursement.objects.get(loan_id=loan.pk).pk)
    return ids


# --- rounds ----------------------------------------------------------------------------------


@dataclass
class Round:
    label: str
    loans: int
    seconds: float
    per_second: float
    enqueue_seconds: float = 0.0
    bank_span_per_second: float = 0.0
    load_average: float = 0.0  # the machine's 1-minute load average at the end of the round
    checks: str = ""


def settled_count(ids: list[int]) -> int:
    from lending.models import Disbursement

    return Disbursement.objects.filter(pk__in=ids, status="settled").count()


def bank_span_rate(ids: list[int]) -> float:
    """Transfers per second between the first and last the bank received."""
    from django.db.models import Max, Min

    from integrations.models import SandboxTransfer
    from lending.models import Disbursement

    e2e = Disbursement.objects.filter(pk__in=ids).values("end_to_end_id")
    span = SandboxTransfer.objects.filter(end_to_end_id__in=e2e).aggregate(
        first=Min("received_at"), last=Max("received_at")
    )
    seconds = (span["last"] - span["first"]).total_seconds()
    return (len(ids) - 1) / seconds if seconds > 0 else 0.0


def worker_round(args: argparse.Namespace, app: Any, concurrency: int, db_reuse: int) -> Round:
    ids = seed_loans(args.loans)
    redis_flush(args.redis_url)
    with running_worker(args, app, concurrency, db_reuse):
        start = time.perf_counter()
        with app.producer_or_acquire() as producer:
            for pk in ids:
                app.send_task("integrations.disburse_loan", args=[pk], producer=producer)
        enqueued = time.perf_counter() - start
        while settled_count(ids) < len(ids):
            if time.perf_counter() - start > args.max_seconds:
                raise SystemExit(f"round did not finish in {args.max_seconds}s")
            time.sleep(0.05)
        seconds = time.perf_counter() - start
    return Round(
        label=f"worker {args.pool} -c {concurrency}"
        + (f" prefetch x{args.prefetch}" if args.prefetch else "")
        + (f", DB_REUSE_MAX {db_reuse}" if db_reuse else ", connection per task"),
        loans=len(ids),
        seconds=seconds,
        per_second=len(ids) / seconds,
        enqueue_seconds=enqueued,
        bank_span_per_second=bank_span_rate(ids),
        load_average=os.getloadavg()[0],
        checks=disbursement_books(ids),
    )


def floor_round(args: argparse.Namespace) -> Round:
    from integrations.bank.disbursement import Outcome, disbursement_execute
    from integrations.bank.sandbox import SandboxBank, SandboxConfig

    ids = seed_loans(args.floor_loans)
    bank = SandboxBank(SandboxConfig(), report_sink=None)
    start = time.perf_counter()
    for pk in ids:
        if disbursement_execute(pk, bank=bank).outcome is not Outcome.SETTLED:
            raise SystemExit(f"disbursement {pk} did not settle in-process")
    seconds = time.perf_counter() - start
    return Round(
        label="in-process disbursement_execute (1 thread)",
        loans=len(ids),
        seconds=seconds,
        per_second=len(ids) / seconds,
        load_average=os.getloadavg()[0],
        checks=disbursement_books(ids),
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    ensure_database(args.database_url, fresh=args.fresh)
    django_setup(args.database_url, process_env(args))
    from scf.celery import app

    app.conf.task_always_eager = False
    rounds = [worker_round(args, app, c, r) for c in args.concurrency for r in args.db_reuse]
    rounds.append(floor_round(args))
    print(
        f"\nDisbursement benchmark ({platform.node()}, {os.cpu_count()} CPUs, PostgreSQL + Redis)"
    )
    for r in rounds:
        extra = (
            f", enqueue {r.enqueue_seconds:.2f}s, bank span {r.bank_span_per_second:.0f}/s"
            if r.enqueue_seconds
            else ""
        )
        print(
            f"  {r.label:44s} {r.loans:5d} loans in {r.seconds:6.2f}s = {r.per_second:7.1f}/s{extra}"
        )
        print(f"    load average {r.load_average:.1f}; {r.checks}")
    if args.json:
        write_json(args.json, [asdict(r) for r in rounds])


if __name__ == "__main__":
    main()
