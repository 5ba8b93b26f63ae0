"""Finance-decision benchmark: a flash crowd of "Finance this order" clicks against PostgreSQL.

Every phase gets its own cohort of agents (each with a credit line and enough confirmed orders,
every 10th line small enough to run out), all in one program of one enterprise, so each phase
starts from the same state and each order is financed exactly once. Phases, in one run and
against one database:

1. HTTP: the app under gunicorn (one or more settings, ``--servers``), ``--clients`` concurrent
   keep-alive clients clicking ``POST /api/v1/orders/{id}/finance/`` with a token and a unique
   ``Idempotency-Key``; ``--warmup`` clicks first, excluded from the figures. ``sync:4@PATH``
   serves another checkout (a prototype) against the same database, for side-by-side runs.
2. in-process, no sockets: ``loan_finance`` called directly (the service: locks, decision,
   reservation, writes), and the whole Django stack (middleware, DRF, token auth, idempotency,
   serialisation) called as gunicorn calls it (``WSGIHandler``, no sockets), each in
   ``--inprocess-procs`` processes.
3. raw SQL floor: the database work of a decision written by hand with psycopg2 (lock the line
   FOR UPDATE, insert loan and decision, reserve on line and program with conditional UPDATEs,
   commit), from ``--clients`` threads with a connection each.

Approved loans queue their payment after commit: on ``--broker-url`` (a Redis database of the
bench's own, flushed before and after; nothing consumes it during the run), as in production.
The per-user rate limits count in the same Redis database, as they do in production (one
round trip per click).

Reports decisions/s, latency percentiles, CPU per decision by process (app, PostgreSQL backends
of the bench database, this client, anything else on the machine), what busy backends waited on,
the API/raw ratio and the targets; then checks the books: no line or program over its limit or
negative, every line's ``reserved`` equal to the sum of its reserving loans, no decline for lack
of line headroom that would have fitted, and the clients' outcomes matching the decisions stored.

Usage (PostgreSQL must answer on loopback; the database is created and migrated if needed)::

    .venv/bin/python bench/finance.py [--servers sync:5,sync:4,gthread:2x4] [--json out.json]
    .venv/bin/python bench/finance.py --plot docs/img/finance-bench.png  # needs '.[bench]'
    .venv/bin/python bench/finance.py --profile 1000      # cProfile of loan_finance, then exit

gunicorn runs in its own session and is stopped however the script ends; ``--max-seconds``
bounds the run, and an interrupted run reports the phases that finished.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import io
import itertools
import json
import math
import multiprocessing as mp
import os
import platform
import pstats
import random
import re
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from common import (
    LOOPBACK,
    ROOT,
    Deadline,
    admin_dsn,
    django_setup,
    ensure_database,
    gunicorn,
    run_threads,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/scf_bench_finance"
# Approved loans queue their disbursement task after commit. On a broker (as in production) the
# click only sends the message; nothing consumes it during the run and the bench flushes this
# database (its own) before and after. "eager" runs the payment inside the request instead.
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/12"
FINANCE_PATH = "/api/v1/orders/{order_id}/finance/"
HTTP_TIMEOUT = 30.0
TARGET_RATE = 300.0
TARGET_P99_MS = 100.0
TARGET_RATIO = 1 / 3

# Program terms (as in the test factories), with an auto-approve limit that refers ~4% of clicks.
ADVANCE_RATE = Decimal("0.8000")
AUTO_APPROVE_LIMIT = Decimal("50000.00")
BIG_LINE = Decimal("2000000.00")
SMALL_LINE = Decimal("120000.00")  # every 10th agent: runs out after a few loans
PROGRAM_LIMIT = Decimal("100000000000.00")
# Statuses a loan reaches by giving its reservation back.
RELEASED = ("disbursement_failed", "expired", "repaid", "written_off")


# --- arguments and the database -------------------------------------------------------------


@dataclass(frozen=True)
class ServerSpec:
    """``sync:W`` or ``gthread:WxT``, optionally ``@PATH``: serve that checkout of the app (a
    prototype, say) instead of this one, against the same database, for side-by-side runs."""

    kind: str  # sync | gthread
    workers: int
    threads: int = 1
    root: Path = ROOT

    @classmethod
    def parse(cls, text: str) -> ServerSpec:
        text, _, root = text.partition("@")
        path = Path(root).resolve() if root else ROOT
        if not (path / "scf" / "wsgi.py").exists():
            raise argparse.ArgumentTypeError(f"no app at {path}")
        kind, _, size = text.partition(":")
        if kind == "sync" and size.isdigit():
            return cls("sync", int(size), root=path)
        if kind == "gthread" and "x" in size:
            workers, threads = size.split("x", 1)
            return cls("gthread", int(workers), int(threads), root=path)
        raise argparse.ArgumentTypeError(f"expected sync:W or gthread:WxT[@PATH], not {text!r}")

    @property
    def label(self) -> str:
        name = (
            f"sync {self.workers} workers"
            if self.kind == "sync"
            else (f"gthread {self.workers}x{self.threads}")
        )
        return name if self.root == ROOT else f"{name} @{self.root.name}"

    def args(self) -> list[str]:
        extra = ["--worker-class", "gthread", "--threads", str(self.threads)]
        return ["--workers", str(self.workers), *(extra if self.kind == "gthread" else [])]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    cpus = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    )
    parser.add_argument(
        "--servers",
        default=f"sync:{cpus + 1}",
        help="comma-separated gunicorn settings, sync:W or gthread:WxT (default sync:cores+1, "
        "which did best here, as make web's WEB_CONCURRENCY); "
        "append @PATH to serve another checkout of the app (a prototype) side by side",
    )
    parser.add_argument(
        "--broker-url",
        default=DEFAULT_BROKER_URL,
        help="Celery broker for the disbursement tasks (flushed: use a database of its own), "
        "or 'eager' to pay out inside each request",
    )
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=5000, help="measured clicks per phase")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured clicks first")
    parser.add_argument("--agents", type=int, default=200, help="agents per phase")
    parser.add_argument("--inprocess-procs", type=int, default=2 * cpus)
    parser.add_argument(
        "--skip", default="", help="comma-separated phases to skip: http,service,django,raw"
    )
    parser.add_argument("--profile", type=int, default=0, help="cProfile N loan_finance calls")
    parser.add_argument("--profile-out", type=Path, help="save the cProfile stats here")
    parser.add_argument(
        "--profile-stack",
        action="store_true",
        help="profile the whole Django + DRF stack (WSGIHandler) instead of loan_finance",
    )
    parser.add_argument("--max-seconds", type=float, default=900.0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--plot",
        type=Path,
        help="also draw each HTTP phase's latencies and rate over its run to this PNG "
        "(needs matplotlib: pip install -e '.[bench]')",
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    try:
        args.servers = [ServerSpec.parse(s.strip()) for s in args.servers.split(",") if s.strip()]
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    return args


def bench_dsn(url: str) -> dict[str, Any]:
    name, dsn = admin_dsn(url)
    return {**dsn, "dbname": name}


def server_env(url: str, broker: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "scf.settings.base",
        "DATABASE_URL": url,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_CONN_MAX_AGE": "600",
        "LOG_LEVEL": "WARNING",
        "CELERY_BROKER_URL": "" if broker == "eager" else broker,
        # The rate limits count in Redis as in production (the broker's database, flushed).
        "REDIS_URL": "" if broker == "eager" else broker,
    }
    return env


def broker_flush(broker: str) -> None:
    """Drop the queued (never consumed) disbursement messages from the bench's broker db."""
    if broker == "eager":
        return
    import redis

    parts = urlsplit(broker)
    if parts.scheme != "redis" or (parts.hostname or "") not in LOOPBACK:
        raise SystemExit("--broker-url must be a loopback redis:// URL or 'eager'")
    redis.Redis.from_url(broker).flushdb()


# --- seeding --------------------------------------------------------------------------------


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
    seeding's writes reach the disk during the first phase, which ran 14-20 % slower than the
    same setting run after it (159 against 198 and 184 decisions/s, run B110106). ``CHECKPOINT``
    needs a superuser or the ``pg_checkpoint`` role; without either the run goes on, warned."""
    from django.db import DatabaseError, connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        try:
            cursor.execute("CHECKPOINT")
        except DatabaseError as exc:
            print(f"no CHECKPOINT before the phases ({exc}); the first may run slower", flush=True)


# The tables a click reads besides the seeded ones, and writes.
CLICK_TABLES = (
    "lending_loan",
    "lending_decision",
    "lending_idempotencyrecord",
    "lending_disbursement",
    "lending_review",
    "lending_auditlog",
)


def analyze_click_tables() -> None:
    """``ANALYZE`` what the warm-up wrote (HTTP and in-process phases). On a fresh database the loans table is empty when
    the phases start, and the plans the workers' connections prepare during the warm-up scan it
    (a sequential scan is the cheapest way to read an empty table) for as long as they are kept:
    run B114D29's first phase took 2.07 ms of PostgreSQL CPU per click against 1.23-1.24 for the
    two after it, 382 decisions/s against 465-475. In production autovacuum analyzes a table
    that has grown from empty within its first minute, which invalidates those plans; this
    stands for it (the analyze invalidates the plans, and the next click prepares new ones)."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in CLICK_TABLES:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")


def seed_program(tag: str, serial: int) -> Setup:
    from lending.models import Bank, Program
    from orders.services.parties import enterprise_create, uscc_complete

    bank, _ = Bank.objects.get_or_create(code="FB-BANK", defaults={"name": "Bench Bank"})
    enterprise, _ = enterprise_create(
        code=f"FB-{tag}",
        name=f"Finance bench manufacturer {tag}",
        uscc=uscc_complete(f"91{serial:010d}00000"),
        settlement_account_no=f"6222{serial:012d}",
        settlement_bank="Bench Bank, Shanghai branch",
    )
    program = Program.objects.create(
        bank=bank,
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
    from django.contrib.auth.hashers import make_password
    from rest_framework.authtoken.models import Token

    from lending.models import CreditLine
    from orders.models import Agent, AgentRelationship, CoreEnterprise, FeedChannel, Role, User
    from orders.services.ingest import orders_ingest
    from orders.services.parties import uscc_complete
    from scf import clock

    prefix = f"FB{setup.tag}{name}"
    enterprise = CoreEnterprise.objects.get(pk=setup.enterprise_id)
    agent_rows = Agent.objects.bulk_create(
        Agent(
            code=f"{prefix}-{k:04d}",
            name=f"Bench distributor {prefix}-{k:04d}",
            uscc=uscc_complete(f"92{serial:010d}{first_uscc + k:05d}"),
            settlement_account_name=f"Bench distributor {k}",
        )
        for k in range(agents)
    )
    AgentRelationship.objects.bulk_create(
        AgentRelationship(agent=a, enterprise=enterprise) for a in agent_rows
    )
    unusable = make_password(None)
    users = User.objects.bulk_create(
        User(username=f"{a.code}-user", role=Role.AGENT, agent=a, password=unusable)
        for a in agent_rows
    )
    tokens = Token.objects.bulk_create(Token(key=Token.generate_key(), user=u) for u in users)
    lines = CreditLine.objects.bulk_create(
        CreditLine(
            agent=a,
            program_id=setup.program_id,
            limit=SMALL_LINE if k % 10 == 9 else BIG_LINE,
            risk_grade="B",
        )
        for k, a in enumerate(agent_rows)
    )
    order_date = (clock.business_date("Asia/Shanghai") - dt.timedelta(days=1)).isoformat()
    payloads = []
    for n in range(clicks):
        amount = order_amount(n)
        payloads.append(
            {
                "external_id": f"{prefix}-{n:06d}",
                "agent_code": agent_rows[n % agents].code,
                "amount": str(amount),
                "currency": "CNY",
                "status": "confirmed",
                "order_date": order_date,
                "version": 1,
                "lines": [{"sku": f"SKU-{n % 50}", "quantity": 1, "unit_price": str(amount)}],
            }
        )
    result = orders_ingest(enterprise=enterprise, payloads=payloads, channel=FeedChannel.BULK)
    if result.created != clicks:
        raise SystemExit(f"seeding {name}: {result.counts()} {result.errors[:3]}")
    by_agent = {
        a.pk: (line.pk, u.pk, t.key)
        for a, line, u, t in zip(agent_rows, lines, users, tokens, strict=True)
    }
    from orders.models import SalesOrder

    orders = SalesOrder.objects.filter(agent_id__in=list(by_agent)).values_list(
        "pk", "agent_id", "amount"
    )
    out = [Click(pk, agent, *by_agent[agent], amount) for pk, agent, amount in orders]
    random.Random(seed).shuffle(out)
    return Cohort(name, [a.pk for a in agent_rows], [line.pk for line in lines], out)


# --- CPU accounting -------------------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def _proc_times(database: str) -> dict[int, tuple[str, int, float]]:
    """pid -> (kind, process group, user+system CPU seconds) for every process we can read.

    kind is ``postgres`` for the bench database's backends (autovacuum included),
    ``postgres-other`` for everything else of PostgreSQL (other databases' backends, and the
    WAL writer, checkpointer and background writer, which serve every database), else the
    command name.
    """
    out: dict[int, tuple[str, int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                data = f.read()
            comm = data[data.index("(") + 1 : data.rindex(")")]
            if comm == "postgres":
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    title = f.read().decode(errors="replace")
                ours = f" {database} " in title
                comm = "postgres" if ours else "postgres-other"
        except OSError:
            continue
        rest = data[data.rindex(")") + 2 :].split()
        out[int(entry)] = (comm, int(rest[2]), (int(rest[11]) + int(rest[12])) / TICK)
    return out


def _machine_busy() -> float:
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    return (sum(parts[:8]) - idle) / TICK


WAITS_SQL = """
SELECT wait_event_type, wait_event, left(regexp_replace(query, '\\s+', ' ', 'g'), 100)
FROM pg_stat_activity
WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()"""


@dataclass
class CpuMeter:
    """What a phase used: CPU seconds of the app under test, PostgreSQL, this client and the
    rest of the machine (from /proc), and what the busy backends were waiting on (sampled from
    ``pg_stat_activity`` every 20 ms on a connection of its own)."""

    is_app: Callable[[int, str, int], bool]
    dsn: dict[str, Any]
    start: dict[int, tuple[str, int, float]] = field(default_factory=dict)
    busy0: float = 0.0
    result: dict[str, float] = field(default_factory=dict)
    samples: int = 0
    waits: Counter[str] = field(default_factory=Counter)
    active: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _sample(self) -> None:
        import psycopg2

        conn = psycopg2.connect(**self.dsn)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                while not self._stop.wait(0.02):
                    cur.execute(WAITS_SQL)
                    self.samples += 1
                    for kind, event, query in cur.fetchall():
                        self.active += 1
                        if kind in ("Lock", "IO", "LWLock"):
                            query = re.sub(r"\d[\d.]*", "N", query.strip())[:56]
                            self.waits[f"{kind}:{event} <- {query}"] += 1
                        elif kind is None:
                            self.waits["on CPU"] += 1
        finally:
            conn.close()

    def __enter__(self) -> CpuMeter:
        self.start, self.busy0 = _proc_times(self.dsn["dbname"]), _machine_busy()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        end, busy = _proc_times(self.dsn["dbname"]), _machine_busy()
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        split = Counter[str]()
        me = os.getpid()
        for pid, (comm, pgrp, cpu) in end.items():
            used = cpu - self.start.get(pid, (comm, pgrp, 0.0))[2]
            if pid == me:
                split["client"] += used
            elif self.is_app(pid, comm, pgrp):
                split["app"] += used
            elif comm == "postgres":
                split["postgres"] += used
        total = busy - self.busy0
        split["other"] = max(0.0, total - sum(split.values()))
        split["total"] = total
        self.result = dict(split)

    def wait_profile(self) -> dict[str, Any]:
        """Average busy backends, and per wait the average number of backends in it."""
        n = max(self.samples, 1)
        top = {k: round(v / n, 2) for k, v in self.waits.most_common(6)}
        return {"active_backends": round(self.active / n, 2), "waits": top}


# --- results --------------------------------------------------------------------------------


@dataclass
class PhaseResult:
    key: str
    label: str
    concurrency: int
    decisions: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    done_at: list[float] = field(default_factory=list)  # HTTP: perf_counter at each reply
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    retries: int = 0
    cpu: dict[str, float] = field(default_factory=dict)
    queries: float = 0.0  # per decision, in-process service only
    db_ms: float = 0.0  # wall time inside the database per decision, in-process service only
    waits: dict[str, Any] = field(default_factory=dict)  # what busy backends waited on
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.decisions / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]

    def cpu_ms(self, part: str) -> float:
        return 1000 * self.cpu.get(part, 0.0) / self.decisions if self.decisions else 0.0

    @property
    def capacity(self) -> float:
        """Decisions/s the machine's CPUs would allow if this were all they did: cores divided
        by the CPU this phase spent per decision (app + PostgreSQL + client), ignoring lock
        waits. A shared machine lowers the measured rate; this estimate stays put."""
        spent = sum(self.cpu_ms(k) for k in ("app", "postgres", "client"))
        return 1000 * (os.cpu_count() or 1) / spent if spent else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "concurrency": self.concurrency,
            "decisions": self.decisions,
            "seconds": round(self.seconds, 3),
            "decisions_per_second": round(self.rate, 1),
            "latency_ms": {
                "p50": round(self.pct(50), 2),
                "p95": round(self.pct(95), 2),
                "p99": round(self.pct(99), 2),
                "max": round(max(self.latencies_ms, default=0.0), 2),
            },
            "outcomes": dict(self.outcomes),
            "cpu_ms_per_decision": {k: round(self.cpu_ms(k), 3) for k in self.cpu},
            "cpu_bound_capacity_per_second": round(self.capacity, 1),
            "queries_per_decision": round(self.queries, 2),
            "db_ms_per_decision": round(self.db_ms, 3),
            "backend_waits": self.waits,
            "errors": self.errors[:10],
            "retries": self.retries,
            "notes": self.notes,
        }


# --- HTTP phase -----------------------------------------------------------------------------


class HttpError(Exception):
    """A reply the lean client cannot read (closed early, malformed)."""


class Client:
    """One connection, kept alive when the server allows (gthread workers); sync workers close
    it after each reply and the next click connects again.

    HTTP/1.1 on a plain socket rather than ``http.client``: the load generator shares the two
    cores with the app and PostgreSQL, and ``http.client`` parses every reply's headers with the
    ``email`` package. A POST that failed before any reply is sent again on a fresh connection:
    the same Idempotency-Key makes that safe, which is the point of the key.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.retries = 0

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def post(self, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        for attempt in range(3):
            try:
                return self._exchange(request)
            except (OSError, HttpError):
                self.close()
                if attempt == 2:
                    raise
                self.retries += 1
        raise AssertionError("unreachable")

    def _exchange(self, request: bytes) -> tuple[int, bytes]:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=HTTP_TIMEOUT)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock = self.sock
        sock.sendall(request)
        data = b""
        while (split := data.find(b"\r\n\r\n")) < 0:
            chunk = sock.recv(65536)
            if not chunk:
                raise HttpError("connection closed before the reply's headers")
            data += chunk
        head, body = data[:split].decode("latin-1"), data[split + 4 :]
        status_line, *header_lines = head.split("\r\n")
        fields = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        try:
            status = int(status_line.split(" ", 2)[1])
            length = int(fields["content-length"]) if "content-length" in fields else None
        except (IndexError, ValueError) as exc:
            raise HttpError(f"malformed reply head: {head[:120]!r}") from exc
        while length is None or len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                if length is None:
                    break
                raise HttpError("connection closed inside the reply's body")
            body += chunk
        if length is None or fields.get("connection", "").lower() == "close":
            self.close()
        return status, body[:length] if length is not None else body


def serve(
    url: str, broker: str, spec: ServerSpec, log_path: Path
) -> contextlib.AbstractContextManager[tuple[int, int]]:
    """Serve the app of ``spec.root``; yields (port, pid of the master)."""
    args = [*spec.args(), "--timeout", "60", "--backlog", "2048", "--log-level", "warning"]
    env = {**server_env(url, broker), "PYTHONPATH": str(spec.root)}
    return gunicorn(args, env=env, log_path=log_path, cwd=spec.root)


def click_headers(tag: str, click: Click) -> dict[str, str]:
    return {
        "Authorization": f"Token {click.token}",
        "Idempotency-Key": f"{tag}-{click.order_id}",
        "Content-Length": "0",
    }


def drive(
    port: int, tag: str, clicks: list[Click], clients: int, deadline: Deadline, res: PhaseResult
) -> float:
    """``clients`` threads take the next unused click until none are left; returns wall time."""
    counter = itertools.count()
    lock = threading.Lock()
    stopped = threading.Event()

    def client(_: int) -> None:
        conn = Client(port)
        latencies: list[float] = []
        finished: list[float] = []
        outcomes = Counter[str]()
        errors: list[str] = []
        while True:
            i = next(counter)
            if i >= len(clicks):
                break
            if deadline.left() < 0:
                stopped.set()
                break
            click = clicks[i]
            start = time.perf_counter()
            try:
                status, body = conn.post(
                    FINANCE_PATH.format(order_id=click.order_id), click_headers(tag, click)
                )
            except (OSError, HttpError) as exc:
                errors.append(f"order {click.order_id}: {exc!r}")
                continue
            done = time.perf_counter()
            latencies.append((done - start) * 1000)
            finished.append(done)
            if status == 201:
                outcomes[json.loads(body)["decision"]["outcome"]] += 1
            else:
                errors.append(f"order {click.order_id}: HTTP {status} {body[:160]!r}")
        conn.close()
        with lock:
            res.latencies_ms.extend(latencies)
            res.done_at.extend(finished)
            res.outcomes.update(outcomes)
            res.errors.extend(errors)
            res.retries += conn.retries

    wall = run_threads(clients, client)
    if stopped.is_set():
        res.notes.append("stopped early: time bound reached")
    return wall


def bench_http(
    url: str, spec: ServerSpec, cohort: Cohort, tag: str, args: argparse.Namespace, dl: Deadline
) -> PhaseResult:
    key = f"http-{spec.kind}-{spec.workers}x{spec.threads}"
    if spec.root != ROOT:
        key += f"@{spec.root.name}"
    res = PhaseResult(key, f"HTTP {spec.label}", args.clients)
    log_path = Path(tempfile.gettempdir()) / f"scf-bench-finance-gunicorn-{os.getpid()}.log"
    warm, measured = cohort.clicks[: args.warmup], cohort.clicks[args.warmup :]
    with serve(url, args.broker_url, spec, log_path) as (port, master):
        scratch = PhaseResult("warmup", "warm-up", args.clients)
        drive(port, tag, warm, args.clients, dl, scratch)
        if scratch.errors:
            res.notes.append(f"warm-up errors: {scratch.errors[:2]}")
        analyze_click_tables()
        meter = CpuMeter(lambda pid, comm, pgrp: pgrp == master, bench_dsn(url))
        with meter:
            res.seconds = drive(port, tag, measured, args.clients, dl, res)
    res.cpu, res.waits = meter.result, meter.wait_profile()
    res.decisions = len(res.latencies_ms)
    return res


# --- in-process phases ----------------------------------------------------------------------


def _inprocess_child(
    mode: str, tag: str, clicks: list[Click], barrier: Any, out: Any, done: Any, warm: int
) -> None:
    """One process: warm up, wait for the parent's analyze (``analyze_click_tables``), then
    finance its share of the clicks serially. Its database
    connection stays open until the parent has read the backends' CPU time (``done``)."""
    from django.db import connection

    one = click_runner(mode == "service", tag, clicks)
    stats = {"queries": 0, "db": 0.0}

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            stats["queries"] += 1
            stats["db"] += time.perf_counter() - start

    latencies: list[float] = []
    outcomes = Counter[str]()
    errors: list[str] = []
    for click in clicks[:warm]:
        one(click)
    barrier.wait()  # warmed up; the parent analyzes
    barrier.wait()  # go
    with connection.execute_wrapper(count):
        for click in clicks[warm:]:
            start = time.perf_counter()
            try:
                outcomes[one(click)] += 1
            except Exception as exc:
                errors.append(f"order {click.order_id}: {exc!r}")
                continue
            latencies.append((time.perf_counter() - start) * 1000)
    out.put((latencies, dict(outcomes), errors, stats["queries"], stats["db"]))
    done.wait(60)
    connection.close()


def bench_inprocess(mode: str, cohort: Cohort, tag: str, args: argparse.Namespace) -> PhaseResult:
    from django.db import connections

    procs = args.inprocess_procs
    label = {"service": "loan_finance", "django": "Django+DRF stack (WSGI, no sockets)"}[mode]
    res = PhaseResult(f"inprocess-{mode}", f"in-process {label}, {procs} procs", procs)
    warm_each = max(1, args.warmup // procs)
    shares = [cohort.clicks[i::procs] for i in range(procs)]
    ctx = mp.get_context("fork")
    barrier, out, done = ctx.Barrier(procs + 1), ctx.Queue(), ctx.Event()
    connections.close_all()  # children must not share the parent's socket
    children = [
        ctx.Process(target=_inprocess_child, args=(mode, tag, share, barrier, out, done, warm_each))
        for share in shares
    ]
    for child in children:
        child.start()
    pids = {c.pid for c in children}
    meter = CpuMeter(lambda pid, comm, pgrp: pid in pids, bench_dsn(os.environ["DATABASE_URL"]))
    try:
        barrier.wait(timeout=300)
        analyze_click_tables()
        barrier.wait(timeout=60)
        start = time.perf_counter()
        with meter:
            gathered = [out.get(timeout=600) for _ in children]
            res.seconds = time.perf_counter() - start
    except BaseException:
        for child in children:
            child.terminate()
        raise
    done.set()
    for child in children:
        child.join(timeout=30)
    queries, db = 0, 0.0
    for latencies, outcomes, errors, q, d in gathered:
        res.latencies_ms.extend(latencies)
        res.outcomes.update(outcomes)
        res.errors.extend(errors)
        queries, db = queries + q, db + d
    res.decisions = len(res.latencies_ms)
    res.cpu, res.waits = meter.result, meter.wait_profile()
    if res.decisions:
        res.queries, res.db_ms = queries / res.decisions, 1000 * db / res.decisions
    return res


# --- raw SQL floor --------------------------------------------------------------------------

RULE_NAMES = [
    "order_status",
    "order_not_financed",
    "order_age",
    "currency",
    "program_active",
    "agent_active",
    "line_frozen",
    "agent_overdue",
    "amount_range",
    "line_headroom",
    "program_headroom",
    "auto_approve_limit",
    "auto_approve_grade",
]


def _raw_decision_json(click: Click, principal: Decimal, available: Decimal) -> tuple[str, str]:
    """Rules and inputs of about the size the service stores, so the rows weigh the same."""
    rules = [{"rule": r, "outcome": "pass", "code": None, "detail": ""} for r in RULE_NAMES]
    inputs = {
        "order_id": click.order_id,
        "order_amount": str(click.amount),
        "principal": str(principal),
        "line_available": str(available),
        "order_status": "confirmed",
        "order_currency": "CNY",
        "agent_status": "active",
        "relationship_active": True,
        "agent_max_dpd": 0,
        "risk_grade": "B",
        "program_status": "active",
    }
    return json.dumps(rules), json.dumps(inputs)


# Columns the raw path sets itself; any other NOT NULL column without a database default (the
# schema grows with the project) gets the zero value of its type, as the model defaults do.
LOAN_PARAMS = [
    "program_id",
    "credit_line_id",
    "agent_id",
    "order_id",
    "status",
    "order_amount",
    "principal",
    "reserved_amount",
    "due_date",
    "reference",
    "requested_by_id",
    "requested_at",
    "decided_at",
    "approved_at",
]
LOAN_CONSTANTS = {
    "currency": "'CNY'",
    "advance_rate": "0.8",
    "annual_rate": "0.054",
    "penalty_rate": "0.081",
    "day_count": "'ACT/360'",
    "tenor_days": "90",
    "grace_days": "3",
}
ZERO_BY_TYPE = {
    "numeric": "0",
    "integer": "0",
    "bigint": "0",
    "smallint": "0",
    "boolean": "false",
    "character varying": "''",
    "text": "''",
    "jsonb": "'{}'",
    "date": "CURRENT_DATE",
    "timestamp with time zone": "now()",
}


def insert_sql(cur: Any, table: str, params: list[str], constants: dict[str, str]) -> str:
    """``INSERT INTO table`` with ``params`` as named placeholders, ``constants`` as literals and
    every other required column (NOT NULL, no default) as its type's zero."""
    cur.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s "
        "AND is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO'",
        [table],
    )
    fill = dict(constants)
    for column, data_type in cur.fetchall():
        if column not in params and column not in fill:
            fill[column] = ZERO_BY_TYPE[data_type]
    columns = [*params, *fill]
    values = [f"%({c})s" for c in params] + list(fill.values())
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(values)}) RETURNING id"


RESERVE_SQL = """
UPDATE {table} SET reserved = reserved + %s
WHERE id = %s AND "limit" >= outstanding_principal + reserved + %s"""


def _raw_one(conn: Any, sql: dict[str, str], program_id: int, click: Click) -> str:
    principal = (click.amount * ADVANCE_RATE).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    now = dt.datetime.now(dt.UTC)
    with conn.cursor() as cur:
        cur.execute(
            'SELECT "limit" - outstanding_principal - reserved FROM lending_creditline '
            "WHERE id = %s FOR UPDATE",
            [click.line_id],
        )
        available = cur.fetchone()[0]
        if principal > available:
            outcome, reasons = "declined", [{"code": "insufficient_credit_line", "detail": ""}]
        elif principal > AUTO_APPROVE_LIMIT:
            outcome, reasons = "in_review", [{"code": "above_auto_approve_limit", "detail": ""}]
        else:
            outcome, reasons = "approved", []
        reserved = principal if outcome != "declined" else Decimal("0.00")
        cur.execute(
            sql["loan"],
            {
                "program_id": program_id,
                "credit_line_id": click.line_id,
                "agent_id": click.agent_id,
                "order_id": click.order_id,
                "status": outcome,
                "order_amount": click.amount,
                "principal": principal,
                "reserved_amount": reserved,
                "due_date": now.date() + dt.timedelta(days=90),
                "reference": f"RAW{uuid.uuid4().hex[:12].upper()}",
                "requested_by_id": click.user_id,
                "requested_at": now,
                "decided_at": now,
                "approved_at": now if outcome == "approved" else None,
            },
        )
        loan_id = cur.fetchone()[0]
        rules, inputs = _raw_decision_json(click, principal, available)
        cur.execute(
            sql["decision"],
            {
                "loan_id": loan_id,
                "outcome": outcome,
                "reasons": json.dumps(reasons),
                "rules": rules,
                "inputs": inputs,
                "decided_at": now,
            },
        )
        if reserved:
            cur.execute(
                RESERVE_SQL.format(table="lending_creditline"), [reserved, click.line_id, reserved]
            )
            cur.execute(
                RESERVE_SQL.format(table="lending_program"), [reserved, program_id, reserved]
            )
            if cur.rowcount != 1:
                conn.rollback()
                return "program_exhausted"
    conn.commit()
    return outcome


def bench_raw(url: str, setup: Setup, cohort: Cohort, args: argparse.Namespace) -> PhaseResult:
    import psycopg2

    res = PhaseResult("raw-sql", f"raw SQL psycopg2, {args.clients} threads", args.clients)
    conns = [psycopg2.connect(**bench_dsn(url)) for _ in range(args.clients)]
    with conns[0].cursor() as cur:
        decision_params = ["loan_id", "outcome", "reasons", "rules", "inputs", "decided_at"]
        sql = {
            "loan": insert_sql(cur, "lending_loan", LOAN_PARAMS, LOAN_CONSTANTS),
            "decision": insert_sql(
                cur, "lending_decision", decision_params, {"engine_version": "'raw-sql'"}
            ),
        }
    conns[0].commit()
    warm, measured = cohort.clicks[: args.warmup], cohort.clicks[args.warmup :]
    lock = threading.Lock()

    def worker(clicks: list[Click], record: bool) -> Callable[[int], None]:
        counter = itertools.count()

        def run(i: int) -> None:
            latencies: list[float] = []
            outcomes = Counter[str]()
            errors: list[str] = []
            while (n := next(counter)) < len(clicks):
                start = time.perf_counter()
                try:
                    outcomes[_raw_one(conns[i], sql, setup.program_id, clicks[n])] += 1
                except psycopg2.Error as exc:
                    conns[i].rollback()
                    errors.append(f"order {clicks[n].order_id}: {exc!r}")
                    continue
                latencies.append((time.perf_counter() - start) * 1000)
            if record:
                with lock:
                    res.latencies_ms.extend(latencies)
                    res.outcomes.update(outcomes)
                    res.errors.extend(errors)

        return run

    try:
        run_threads(args.clients, worker(warm, record=False))
        meter = CpuMeter(lambda pid, comm, pgrp: False, bench_dsn(url))
        with meter:
            res.seconds = run_threads(args.clients, worker(measured, record=True))
    finally:
        for conn in conns:
            conn.close()
    res.cpu, res.waits = meter.result, meter.wait_profile()
    res.decisions = len(res.latencies_ms)
    return res


# --- verification ---------------------------------------------------------------------------


def verify(setup: Setup, phases: dict[str, tuple[Cohort, PhaseResult]]) -> list[str]:
    """Check the books after the run; returns the problems found (empty when all is well)."""
    from django.db import connection

    from lending.models import RESERVES_CREDIT

    reserving = [str(status) for status in RESERVES_CREDIT]
    problems: list[str] = []
    with connection.cursor() as cur:
        for key, (cohort, res) in phases.items():
            cur.execute(
                """
                SELECT l.id, l."limit", l.reserved, l.outstanding_principal,
                  COALESCE(SUM(n.reserved_amount) FILTER (WHERE n.status = ANY(%s)), 0),
                  COALESCE(SUM(n.principal) FILTER (WHERE n.status = ANY(%s)), 0),
                  MIN(n.principal) FILTER (
                    WHERE n.status = 'declined'
                    AND d.reasons @> '[{"code": "insufficient_credit_line"}]'),
                  COUNT(n.id),
                  COUNT(n.id) FILTER (WHERE n.status = ANY(%s))
                FROM lending_creditline l
                LEFT JOIN lending_loan n ON n.credit_line_id = l.id
                LEFT JOIN lending_decision d ON d.loan_id = n.id
                WHERE l.id = ANY(%s)
                GROUP BY l.id""",
                [reserving, reserving, list(RELEASED), cohort.line_ids],
            )
            loans = 0
            for row in cur:
                line_id, limit, reserved, outstanding, held, principal, declined, count = row[:8]
                loans += count
                if reserved < 0 or outstanding < 0 or outstanding + reserved > limit:
                    problems.append(f"{key}: line {line_id} over limit or negative")
                if reserved != held:
                    problems.append(f"{key}: line {line_id} reserved {reserved} != loans {held}")
                if principal > limit:
                    problems.append(f"{key}: line {line_id} reserving loans exceed the limit")
                # Reservations only grow unless credit came back (failed payout, expiry...):
                # a decline for lack of headroom must still not fit at the end.
                if (
                    declined is not None
                    and not row[8]
                    and declined <= limit - outstanding - reserved
                ):
                    problems.append(f"{key}: line {line_id} declined {declined} that would fit")
            if loans != len(cohort.clicks) and not res.notes:
                problems.append(f"{key}: {loans} loans for {len(cohort.clicks)} clicks")
            cur.execute(
                "SELECT d.outcome, COUNT(*) FROM lending_loan n JOIN lending_decision d "
                "ON d.loan_id = n.id WHERE n.credit_line_id = ANY(%s) GROUP BY d.outcome",
                [cohort.line_ids],
            )
            written = dict(cur.fetchall())
            seen = res.outcomes
            if any(seen[k] > written.get(k, 0) for k in seen):
                problems.append(f"{key}: clients saw {dict(seen)}, database has {written}")
        cur.execute(
            """
            SELECT p."limit", p.reserved, p.outstanding_principal,
              COALESCE((SELECT SUM(reserved_amount) FROM lending_loan
                        WHERE program_id = p.id AND status = ANY(%s)), 0)
            FROM lending_program p WHERE p.id = %s""",
            [reserving, setup.program_id],
        )
        limit, reserved, outstanding, held = cur.fetchone()
        if reserved < 0 or outstanding < 0 or reserved + outstanding > limit:
            problems.append("program over its limit or negative")
        if reserved != held:
            problems.append(f"program reserved {reserved} != its loans' {held}")
    return problems


# --- profile --------------------------------------------------------------------------------


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


def profile_service(cohort: Cohort, calls: int, out: Path | None, stack: bool, tag: str) -> None:
    one = click_runner(not stack, tag, cohort.clicks)
    for click in cohort.clicks[:50]:
        one(click)
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for click in cohort.clicks[50 : 50 + calls]:
        one(click)
    profiler.disable()
    wall = time.perf_counter() - start
    what = "Django + DRF stack (WSGIHandler)" if stack else "loan_finance"
    print(f"\n{what}, serial, profiled: {calls} calls in {wall:.2f} s")
    for order in ("tottime", "cumulative"):
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).sort_stats(order).print_stats(30)
        print(buf.getvalue())
    if out:
        profiler.dump_stats(str(out))
        print(f"stats saved to {out}")


# --- report ---------------------------------------------------------------------------------


def machine_speed_ms() -> float:
    """Median time of a fixed single-threaded Python workload (string, dict and arithmetic work
    like a request's), in ms: this machine's speed drifts by a third within minutes and from day
    to day, so runs are compared by it (the lower, the faster) and pairs are run side by side."""

    def workload() -> int:
        counts: dict[str, int] = {}
        for i in range(200_000):
            key = f"k{i % 1000}"
            counts[key] = counts.get(key, 0) + i
        return len(counts)

    times = []
    for _ in range(5):
        start = time.perf_counter()
        workload()
        times.append((time.perf_counter() - start) * 1e3)
    return sorted(times)[2]


def environment(args: argparse.Namespace) -> dict[str, Any]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        version = cur.fetchone()[0]
        cur.execute("SHOW synchronous_commit")
        sync = cur.fetchone()[0]
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "postgresql": version,
        "synchronous_commit": sync,
        "load_average_before": os.getloadavg(),
        "machine_speed_ms_before": machine_speed_ms(),
        "clients": args.clients,
        "requests": args.requests,
        "warmup": args.warmup,
        "agents_per_phase": args.agents,
        "inprocess_procs": args.inprocess_procs,
        "disbursement_tasks": "eager (in the request)"
        if args.broker_url == "eager"
        else f"queued on {args.broker_url}, not consumed during the run",
        "servers": [s.label for s in args.servers],
    }


def report(env: dict[str, Any], results: list[PhaseResult], problems: list[str]) -> dict[str, Any]:
    print()
    print(
        f"Finance decisions: PostgreSQL {env['postgresql']}, {env['cpus']} CPUs, Python "
        f"{env['python']}, {env['requests']} measured clicks per phase, {env['agents_per_phase']} "
        f"agents per phase (load before: {env['load_average_before'][0]:.2f})"
    )
    print(
        f"machine speed: a fixed Python workload took {env['machine_speed_ms_before']:.0f} ms "
        f"before the phases and {env.get('machine_speed_ms_after', float('nan')):.0f} ms after "
        "(the lower, the faster; compare runs of different days by it)"
    )
    head = (
        f"{'path':<44} {'conc':>4} {'dec/s':>7} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} "
        f"| {'CPU ms/decision: app':>20} {'pg':>5} {'client':>6} {'other':>5} | {'cap/s':>5}"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        print(
            f"{r.label:<44} {r.concurrency:>4} {r.rate:>7.0f} {r.pct(50):>7.1f} {r.pct(95):>7.1f} "
            f"{r.pct(99):>7.1f} {max(r.latencies_ms, default=0):>7.1f} | {r.cpu_ms('app'):>20.2f} "
            f"{r.cpu_ms('postgres'):>5.2f} {r.cpu_ms('client'):>6.2f} {r.cpu_ms('other'):>5.2f} "
            f"| {r.capacity:>5.0f}"
        )
    print(
        "(latencies in ms; 'other' is CPU used by anything else on the machine meanwhile; raw SQL "
        "runs in the client process; cap/s = cores / (app + pg + client CPU per decision))"
    )
    for r in results:
        extra = (
            f", {r.queries:.1f} queries and {r.db_ms:.2f} ms in the database per decision"
            if r.queries
            else ""
        )
        retry = f", {r.retries} reconnect retries" if r.retries else ""
        print(f"  {r.label}: outcomes {dict(r.outcomes)}{extra}{retry}")
        if r.waits:
            print(f"    busy backends on average: {r.waits['active_backends']}")
            for what, n in r.waits["waits"].items():
                print(f"      {n:>6.2f}  {what}")
        for line in [*r.errors[:3], *r.notes]:
            print(f"    {line}")
    # Targets are judged on this checkout; other checkouts (@PATH) are shown for comparison.
    http = [r for r in results if r.key.startswith("http") and "@" not in r.key]
    raw = next((r for r in results if r.key == "raw-sql"), None)
    best = max(http, key=lambda r: r.rate, default=None)
    verdicts: dict[str, Any] = {}
    for other in (r for r in results if r.key.startswith("http") and "@" in r.key):
        versus = f", {other.rate / best.rate:.2f}x this checkout's best" if best else ""
        print(f"for comparison, {other.label}: {other.rate:.0f} decisions/s{versus}")
    if best:
        verdicts["best_http"] = best.label
        verdicts["rate_met"] = best.rate >= TARGET_RATE
        verdicts["p99_met"] = best.pct(99) < TARGET_P99_MS
        print(
            f"best HTTP setting: {best.label}: {best.rate:.0f} decisions/s "
            f"(target >= {TARGET_RATE:.0f}: {'met' if verdicts['rate_met'] else 'MISSED'}), "
            f"p99 {best.pct(99):.1f} ms (target < {TARGET_P99_MS:.0f}: "
            f"{'met' if verdicts['p99_met'] else 'MISSED'})"
        )
        if raw and raw.rate:
            ratio = best.rate / raw.rate
            verdicts["api_over_raw"] = round(ratio, 3)
            verdicts["ratio_met"] = ratio >= TARGET_RATIO
            print(
                f"ratio API/raw SQL: {best.rate:.0f} / {raw.rate:.0f} = {ratio:.2f} "
                f"(target >= 0.33: {'met' if verdicts['ratio_met'] else 'MISSED'})"
            )
    verdicts["books_ok"] = not problems
    print(f"books: {'consistent' if not problems else 'PROBLEMS'}")
    for p in problems[:20]:
        print(f"  {p}")
    return verdicts


def plot(tag: str, env: dict[str, Any], results: list[PhaseResult], path: Path) -> None:
    """Two panels over each phase's run: every click's latency at the moment its reply came
    (with the p99 target), and decisions per second in half-second bins (with the rate target).
    The slow seconds a percentile hides show here."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat, rate) = plt.subplots(1, 2, figsize=(12, 4.2), constrained_layout=True)
    width = 0.5
    for r in results:
        t0 = min(d - ms / 1000 for d, ms in zip(r.done_at, r.latencies_ms, strict=True))
        times = [d - t0 for d in r.done_at]
        label = f"{r.label}: {r.rate:.0f}/s, p99 {r.pct(99):.0f} ms"
        dots = lat.scatter(times, r.latencies_ms, s=2, alpha=0.35, label=label)
        bins = Counter(int(t / width) for t in times)
        last = max(bins)
        xs = [(i + 0.5) * width for i in range(last)]  # the last bin is partial: left out
        rate.plot(xs, [bins[i] / width for i in range(last)], color=dots.get_facecolor()[0][:3])
    lat.axhline(TARGET_P99_MS, color="red", linestyle="--", linewidth=1, label="p99 target")
    top = max(max(r.latencies_ms) for r in results)
    lat.set(xlabel="seconds into the phase", ylabel="latency of the click (ms)")
    lat.set_ylim(0, max(1.25 * top, 1.25 * TARGET_P99_MS))
    lat.legend(loc="upper right", fontsize=7, markerscale=4)
    rate.axhline(TARGET_RATE, color="red", linestyle="--", linewidth=1, label="rate target")
    rate.set(xlabel="seconds into the phase", ylabel="decisions per second (0.5 s bins)")
    rate.set_ylim(bottom=0)
    rate.legend(loc="lower right", fontsize=7)
    fig.suptitle(
        f"Finance clicks, run {tag}: {env['clients']} clients, {env['requests']} clicks per phase, "
        f"{env['cpus']} CPUs, machine speed {env['machine_speed_ms_before']:.0f} ms",
        fontsize=10,
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.plot:  # before the run, not after it
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise SystemExit(
                "--plot needs matplotlib: .venv/bin/pip install -e '.[bench]'"
            ) from None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    dl = Deadline(args.max_seconds)
    ensure_database(args.database_url)
    django_setup(args.database_url, server_env(args.database_url, args.broker_url))
    broker_flush(args.broker_url)
    env = environment(args)
    serial = int(time.time())
    tag = f"{serial:x}"[-7:].upper()
    setup = seed_program(tag, serial)
    wanted = [f"h{i}" for i in range(len(args.servers))] if "http" not in args.skip else []
    wanted += [m for m in ("service", "django", "raw") if m not in args.skip]
    if args.profile:
        wanted = ["prof"]
    clicks = args.requests + args.warmup
    start = time.perf_counter()
    for n, name in enumerate(wanted):
        count = args.profile + 50 if name == "prof" else clicks
        setup.cohorts[name] = seed_cohort(
            setup, name, serial, n * args.agents, args.agents, count, args.seed + n
        )
    analyze_and_checkpoint()
    print(
        f"run {tag}: seeded {len(wanted)} cohorts of {args.agents} agents and analyzed in "
        f"{time.perf_counter() - start:.1f} s",
        flush=True,
    )
    if args.profile:
        profile_service(
            setup.cohorts["prof"], args.profile, args.profile_out, args.profile_stack, tag
        )
        return 0
    results: list[PhaseResult] = []
    phases: dict[str, tuple[Cohort, PhaseResult]] = {}

    def record(name: str, res: PhaseResult) -> None:
        results.append(res)
        phases[res.key] = (setup.cohorts[name], res)
        print(f"  {res.label}: {res.rate:.0f} decisions/s, p99 {res.pct(99):.1f} ms", flush=True)

    try:
        for i, spec in enumerate(args.servers if "http" not in args.skip else []):
            cohort = setup.cohorts[f"h{i}"]
            record(f"h{i}", bench_http(args.database_url, spec, cohort, tag, args, dl))
        for mode in ("service", "django"):
            if mode not in args.skip and dl.left() > 0:
                record(mode, bench_inprocess(mode, setup.cohorts[mode], tag, args))
        if "raw" not in args.skip and dl.left() > 0:
            record("raw", bench_raw(args.database_url, setup, setup.cohorts["raw"], args))
    except (KeyboardInterrupt, SystemExit) as exc:
        # Stopped (Ctrl-C, SIGTERM): report the phases that finished.
        print(f"interrupted ({exc!r}); reporting the finished phases", flush=True)
    broker_flush(args.broker_url)
    env["machine_speed_ms_after"] = machine_speed_ms()
    problems = verify(setup, phases)
    verdicts = report(env, results, problems)
    if args.json:
        payload = {
            "run": tag,
            "environment": env,
            "targets": {"rate": TARGET_RATE, "p99_ms": TARGET_P99_MS, "api_over_raw": TARGET_RATIO},
            "verdicts": verdicts,
            "results": {r.key: r.summary() for r in results},
            "problems": problems,
        }
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"results written to {args.json}")
    plotted = [r for r in results if r.done_at]
    if args.plot and plotted:
        plot(tag, env, plotted, args.plot)
        print(f"plot written to {args.plot}")
    elif args.plot:
        print("no HTTP phase finished: nothing to plot")
    return 1 if problems or any(r.errors for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
