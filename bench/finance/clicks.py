"""The finance click's cohorts (program, agents, lines, tokens, confirmed orders) and one click
made in this process, through ``loan_finance`` or the whole Django + DRF stack."""

from __future__ import annotations

import datetime as dt
import io
import json
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bench.lib.db import analyze, redis_flush
from bench.lib.seeding import agents_seed, order_payload, program_seed

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/scf_bench_finance"
# Approved loans queue their disbursement task after commit. On a broker (as in production) the
# click only sends the message; nothing consumes it during the run and the bench flushes this
# database (its own) before and after. "eager" runs the payment inside the request instead.
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/12"
FINANCE_PATH = "/api/v1/orders/{order_id}/finance/"

# Program terms (as in the test factories), with an auto-approve limit that refers ~4% of clicks.
ADVANCE_RATE = Decimal("0.8000")
AUTO_APPROVE_LIMIT = Decimal("50000.00")
BIG_LINE = Decimal("2000000.00")
SMALL_LINE = Decimal("120000.00")  # every 10th agent: runs out after a few loans
PROGRAM_LIMIT = Decimal("100000000000.00")

# The tables a click reads besides the seeded ones, and writes.
CLICK_TABLES = (
    "lending_loan",
    "lending_decision",
    "lending_idempotencyrecord",
    "lending_disbursement",
    "lending_review",
    "lending_auditlog",
)


def click_env(broker: str) -> dict[str, str]:
    """The settings the app clicks with, besides production's: connections kept, the payments
    queued on ``broker`` (or paid in the request: ``eager``) and the rate limits counted there."""
    return {
        "DATABASE_CONN_MAX_AGE": "600",
        "CELERY_BROKER_URL": "" if broker == "eager" else broker,
        # The rate limits count in Redis as in production (the broker's database, flushed).
        "REDIS_URL": "" if broker == "eager" else broker,
    }


def broker_flush(broker: str) -> None:
    """Drop the queued (never consumed) disbursement messages from the bench's broker db."""
    if broker != "eager":
        redis_flush(broker)


@dataclass(frozen=True)
class Click:
    order_id: int
    agent_id: int
    line_id: int
    user_id: int
    token: str
    amount: Decimal


@dataclass
class Cohort:
    name: str
    agent_ids: list[int]
    line_ids: list[int]
    clicks: list[Click]  # warm-up first, then measured; each order once


@dataclass
class Setup:
    tag: str
    enterprise_id: int
    program_id: int
    cohorts: dict[str, Cohort] = field(default_factory=dict)


def analyze_and_checkpoint() -> None:
    """``ANALYZE`` the bench database after seeding: the planner then sees the new orders, lines
    and tokens, as autovacuum would have let it in production (it may be off on a bench
    machine, and the database grows by every run's cohorts). Then ``CHECKPOINT``: otherwise the
    seeding's writes reach the disk during the first phase, which then runs slower than the
    same setting run after it. ``CHECKPOINT`` needs a superuser or the ``pg_checkpoint`` role;
    without either the run goes on, warned."""
    from django.db import DatabaseError, connection

    analyze()
    with connection.cursor() as cursor:
        try:
            cursor.execute("CHECKPOINT")
        except DatabaseError as exc:
            print(f"no CHECKPOINT before the phases ({exc}); the first may run slower", flush=True)


def analyze_click_tables() -> None:
    """``ANALYZE`` what the warm-up wrote (HTTP and in-process phases). On a fresh database the
    loans table is empty when the phases start, and the plans the workers' connections prepare
    during the warm-up scan it (a sequential scan is the cheapest way to read an empty table)
    for as long as they are kept, which made the first phase on a fresh database markedly
    dearer in PostgreSQL CPU than the ones after it. In production autovacuum analyzes a table
    that has grown from empty within its first minute, which invalidates those plans; this
    stands for it (the analyze invalidates the plans, and the next click prepares new ones)."""
    analyze(*CLICK_TABLES)


def seed_program(tag: str, serial: int) -> Setup:
    from orders.services.parties import enterprise_create, uscc_complete

    enterprise, _ = enterprise_create(
        code=f"FB-{tag}",
        name=f"Finance bench manufacturer {tag}",
        uscc=uscc_complete(f"91{serial:010d}00000"),
        settlement_account_no=f"6222{serial:012d}",
        settlement_bank="Bench Bank, Shanghai branch",
    )
    program = program_seed(
        enterprise=enterprise,
        code=f"FB-{tag}",
        name=f"Finance bench {tag}",
        currency="CNY",
        advance_rate=ADVANCE_RATE,
        limit=PROGRAM_LIMIT,
        min_principal=Decimal("1000.00"),
        max_principal=Decimal("1000000.00"),
        tenor_days=90,
        annual_rate=Decimal("0.054000"),
        day_count="ACT/360",
        grace_days=3,
        penalty_rate=Decimal("0.081000"),
        max_order_age_days=90,
        max_dpd_tolerated=0,
        auto_approve_limit=AUTO_APPROVE_LIMIT,
        auto_approve_grade="C",
        maker_checker_threshold=Decimal("200000.00"),
        review_hold_hours=48,
    )
    return Setup(tag, enterprise.pk, program.pk)


def order_amount(n: int) -> Decimal:
    """Mostly 5,000-60,000; every 25th order large enough to be referred to review."""
    if n % 25 == 24:
        return Decimal("70000.00")
    return Decimal(5000 + (n * 7919) % 55000) + Decimal("0.50")


def seed_cohort(
    setup: Setup, name: str, serial: int, first_uscc: int, agents: int, clicks: int, seed: int
) -> Cohort:
    """Agents, relationships, agent users with tokens, credit lines (set-based), then orders
    through the feed service; returns the clicks in a shuffled flash-crowd order."""
    from orders.models import Agent, CoreEnterprise, FeedChannel, SalesOrder
    from orders.services.ingest import orders_ingest
    from orders.services.parties import uscc_complete
    from scf import clock

    prefix = f"FB{setup.tag}{name}"
    enterprise = CoreEnterprise.objects.get(pk=setup.enterprise_id)
    seeded = agents_seed(
        enterprise=enterprise,
        program_id=setup.program_id,
        agents=[
            Agent(
                code=f"{prefix}-{k:04d}",
                name=f"Bench distributor {prefix}-{k:04d}",
                uscc=uscc_complete(f"92{serial:010d}{first_uscc + k:05d}"),
                settlement_account_name=f"Bench distributor {k}",
            )
            for k in range(agents)
        ],
        limit=lambda k: SMALL_LINE if k % 10 == 9 else BIG_LINE,
        risk_grade="B",
        tokens=True,
    )
    order_date = (clock.business_date("Asia/Shanghai") - dt.timedelta(days=1)).isoformat()
    payloads = [
        order_payload(
            f"{prefix}-{n:06d}",
            seeded[n % agents].agent.code,
            [(f"SKU-{n % 50}", 1, order_amount(n))],
            order_date,
        )
        for n in range(clicks)
    ]
    result = orders_ingest(enterprise=enterprise, payloads=payloads, channel=FeedChannel.BULK)
    if result.created != clicks:
        raise SystemExit(f"seeding {name}: {result.counts()} {result.errors[:3]}")
    by_agent = {s.agent.pk: (s.line.pk, s.user.pk, s.token) for s in seeded}
    orders = SalesOrder.objects.filter(agent_id__in=list(by_agent)).values_list(
        "pk", "agent_id", "amount"
    )
    out = [Click(pk, agent, *by_agent[agent], amount) for pk, agent, amount in orders]
    random.Random(seed).shuffle(out)
    return Cohort(name, [s.agent.pk for s in seeded], [s.line.pk for s in seeded], out)


def click_headers(tag: str, click: Click) -> dict[str, str]:
    return {
        "Authorization": f"Token {click.token}",
        "Idempotency-Key": f"{tag}-{click.order_id}",
        "Content-Length": "0",
    }


def click_runner(service: bool, tag: str, clicks: list[Click]) -> Callable[[Click], str]:
    """A click in this process: ``loan_finance`` itself (``service``), or the whole Django + DRF
    stack called as gunicorn calls it (``WSGIHandler`` with a WSGI environ, no sockets). Returns
    the decision's outcome."""
    from django.core.handlers.wsgi import WSGIHandler

    from lending.services.finance import loan_finance
    from orders.models import User

    users = User.objects.in_bulk({c.user_id for c in clicks})
    app = WSGIHandler()
    status: list[str] = []

    def start_response(line: str, headers: Any, exc_info: Any = None) -> None:
        status[:] = [line]

    def one(click: Click) -> str:
        if service:
            loan = loan_finance(user=users[click.user_id], order_id=click.order_id)
            return str(loan.decision.outcome)
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": FINANCE_PATH.format(order_id=click.order_id),
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1",
            "CONTENT_LENGTH": "0",
            "HTTP_AUTHORIZATION": f"Token {click.token}",
            "HTTP_IDEMPOTENCY_KEY": f"{tag}-{click.order_id}",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http",
        }
        result = app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            result.close()  # as a WSGI server does: Django's request_finished runs here
        if not status[0].startswith("201"):
            raise RuntimeError(f"HTTP {status[0]} {body[:160]!r}")
        return str(json.loads(body)["decision"]["outcome"])

    return one
