"""Order feed ingestion benchmark: PostgreSQL behind gunicorn, driven over loopback HTTP.

What it measures, in one run and against one database:

1. bulk: ``POST /api/v1/integrations/orders/bulk/`` with 10,000 new orders per request, a few
   client threads at once, several rounds; orders/s per round (median reported) and request
   latency.
2. webhook: single signed ``order.upserted`` events from a few concurrent clients for a fixed
   time; orders/s and p50/p95/p99 latency.
3. in-process floor: ``orders_ingest`` called directly with 10,000 orders (no HTTP, no JSON),
   and the ratio of the bulk HTTP rate to it.

Usage (PostgreSQL must answer; the bench database is created if missing and reused after)::

    .venv/bin/python -m bench.feed [--json results.json] [--workers 4] [--bulk-rounds 5]

Everything stays on loopback; gunicorn runs in its own process group and is stopped however the
script ends. ``--max-seconds`` bounds the whole run. ``--fresh`` drops and recreates the bench
database first (only a database whose name starts with ``scf_bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.lib.db import django_setup, ensure_database
from bench.lib.http import request
from bench.lib.processes import Deadline, exit_on_sigterm, gunicorn, run_threads
from bench.lib.report import environment, latency_summary, load_average, percentile, write_json
from bench.lib.seeding import order_payload

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/scf_bench"
BULK_PATH = "/api/v1/integrations/orders/bulk/"
WEBHOOK_PATH = "/api/v1/integrations/orders/webhook/"
ENTERPRISE_CODE = "BENCH-CE"
HTTP_TIMEOUT_SECONDS = 120.0
TARGET_BULK_ORDERS_PER_SECOND = 10_000


# --- arguments ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.feed", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--bulk-size", type=int, default=10_000, help="orders per bulk request")
    parser.add_argument("--bulk-rounds", type=int, default=5)
    parser.add_argument("--bulk-clients", type=int, default=2, help="concurrent bulk requests")
    parser.add_argument("--webhook-clients", type=int, default=4)
    parser.add_argument("--webhook-seconds", type=float, default=15.0)
    parser.add_argument("--inprocess-rounds", type=int, default=3)
    parser.add_argument("--max-seconds", type=float, default=600.0, help="bound on the whole run")
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the bench db")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.bulk_size > 10_000:
        parser.error("the bulk endpoint takes at most 10,000 orders per request")
    return args


# --- parties --------------------------------------------------------------------------------


@dataclass
class Party:
    enterprise_id: int
    code: str
    api_key: str
    webhook_secret: str
    agent_codes: list[str]


def bench_parties(agent_count: int) -> Party:
    """The bench enterprise and its agents, created once; credentials are rotated every run
    because only the create or rotate services ever show them in plaintext."""
    from orders.models import Agent, CoreEnterprise
    from orders.services.parties import (
        agent_create,
        enterprise_create,
        enterprise_credentials_rotate,
        uscc_complete,
    )

    enterprise = CoreEnterprise.objects.filter(code=ENTERPRISE_CODE).first()
    if enterprise is None:
        enterprise, creds = enterprise_create(
            code=ENTERPRISE_CODE,
            name="Benchmark Manufacturing Co.",
            uscc=uscc_complete("9131" + f"{7_700_000_000_000:013d}"),
        )
    else:
        creds = enterprise_credentials_rotate(enterprise=enterprise)
    codes = [f"BENCH-AG-{n:04d}" for n in range(1, agent_count + 1)]
    existing = set(Agent.objects.filter(code__in=codes).values_list("code", flat=True))
    for n, code in enumerate(codes, start=1):
        if code not in existing:
            agent_create(
                code=code,
                name=f"Benchmark Distributor {n}",
                uscc=uscc_complete("9131" + f"{7_800_000_000_000 + n:013d}"),
                enterprises=[enterprise],
            )
    return Party(enterprise.pk, enterprise.code, creds.api_key, creds.webhook_secret, codes)


def make_order(external_id: str, agent_code: str, n: int) -> dict[str, Any]:
    """An order of three of a product and the freight."""
    first, second = 1000 + n % 997, 250 + n % 89
    lines = [(f"SKU-{n % 40}", 3, Decimal(f"{first}.00")), ("FREIGHT", 1, Decimal(f"{second}.50"))]
    return order_payload(external_id, agent_code, lines, "2026-11-20")


def make_orders(prefix: str, count: int, agent_codes: list[str]) -> list[dict[str, Any]]:
    return [
        make_order(f"{prefix}-{i:05d}", agent_codes[i % len(agent_codes)], i) for i in range(count)
    ]


# --- measurements ---------------------------------------------------------------------------


@dataclass
class PathResult:
    name: str
    orders: int = 0
    seconds: float = 0.0
    rates: list[float] = field(default_factory=list)  # orders/s per round
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def median_rate(self) -> float:
        return statistics.median(self.rates) if self.rates else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "seconds": round(self.seconds, 3),
            "orders_per_second_median": round(self.median_rate, 1),
            "orders_per_second_rounds": [round(r, 1) for r in self.rates],
            "requests": len(self.latencies_ms),
            "latency_ms": latency_summary(self.latencies_ms),
            "errors": self.errors[:10],
            "notes": self.notes,
        }


def bench_bulk(
    port: int,
    party: Party,
    args: argparse.Namespace,
    run_id: str,
    deadline: Deadline,
    clients: int,
) -> PathResult:
    result = PathResult(f"bulk-{clients}")
    headers = {"Content-Type": "application/json", "Authorization": f"Api-Key {party.api_key}"}
    # Warm-up: every worker imports the app and opens its database connection.
    warm = json.dumps(
        {"orders": make_orders(f"{run_id}-bw{clients}", 50, party.agent_codes)}
    ).encode()
    for _ in range(args.workers * 2):
        request(port, "POST", BULK_PATH, warm, headers, timeout=HTTP_TIMEOUT_SECONDS)
    for round_no in range(args.bulk_rounds):
        if deadline.left() < 60:
            result.notes.append(f"stopped after {round_no} rounds: time bound")
            break
        bodies = [
            json.dumps(
                {
                    "orders": make_orders(
                        f"{run_id}-b{clients}r{round_no}c{c}", args.bulk_size, party.agent_codes
                    )
                },
                separators=(",", ":"),
            ).encode()
            for c in range(clients)
        ]
        lock = threading.Lock()

        def send(c: int, bodies: list[bytes] = bodies, lock: threading.Lock = lock) -> None:
            try:
                status, data, elapsed = request(
                    port, "POST", BULK_PATH, bodies[c], headers, timeout=HTTP_TIMEOUT_SECONDS
                )
            except OSError as exc:  # refused, reset or timed out: the round fails
                with lock:
                    result.errors.append(f"{type(exc).__name__}: {exc}")
                return
            with lock:
                result.latencies_ms.append(elapsed * 1000)
                reply = json.loads(data) if data.startswith(b"{") else {}
                if status != 200 or reply.get("created") != args.bulk_size:
                    result.errors.append(f"HTTP {status}: {data[:200]!r}")

        errors_before = len(result.errors)
        wall = run_threads(clients, send, join_timeout=HTTP_TIMEOUT_SECONDS * 2)
        if len(result.errors) > errors_before:
            result.notes.append(f"round {round_no + 1} failed: not counted")
            continue
        orders = clients * args.bulk_size
        result.orders += orders
        result.seconds += wall
        result.rates.append(orders / wall)
        print(
            f"  bulk, {clients} client(s), round {round_no + 1}: {orders} orders in {wall:.2f} s",
            flush=True,
        )
    return result


def bench_webhook(
    port: int, party: Party, args: argparse.Namespace, run_id: str, deadline: Deadline
) -> PathResult:
    from integrations.feed.signing import sign

    result = PathResult("webhook")
    lock = threading.Lock()
    seconds = min(args.webhook_seconds, max(1.0, deadline.left() - 30))

    def post(external_id: str, n: int) -> tuple[int, bytes, float]:
        event = {"event_id": f"evt-{external_id}", "type": "order.upserted"}
        event["order"] = make_order(external_id, party.agent_codes[n % len(party.agent_codes)], n)
        body = json.dumps(event, separators=(",", ":")).encode()
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-SCF-Enterprise": party.code,
            "X-SCF-Timestamp": ts,
            "X-SCF-Signature": sign(party.webhook_secret, ts, body),
        }
        return request(port, "POST", WEBHOOK_PATH, body, headers, timeout=HTTP_TIMEOUT_SECONDS)

    for i in range(args.workers * 4):
        post(f"{run_id}-ww-{i}", i)
    stop_at = time.perf_counter() + seconds

    def client(c: int) -> None:
        n = 0
        latencies: list[float] = []
        errors: list[str] = []
        while time.perf_counter() < stop_at:
            try:
                status, data, elapsed = post(f"{run_id}-w{c}-{n}", n)
            except OSError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                break
            n += 1
            latencies.append(elapsed * 1000)
            if status != 200 or b'"applied"' not in data:
                errors.append(f"HTTP {status}: {data[:200]!r}")
        with lock:
            result.latencies_ms.extend(latencies)
            result.errors.extend(errors)

    wall = run_threads(args.webhook_clients, client, join_timeout=HTTP_TIMEOUT_SECONDS * 2)
    # Only applied events count as orders; failures are reported and fail the run.
    result.orders = max(0, len(result.latencies_ms) - len(result.errors))
    result.seconds = wall
    result.rates.append(result.orders / wall)
    return result


def bench_inprocess(party: Party, args: argparse.Namespace, run_id: str) -> PathResult:
    from django.db import connection

    from orders.models import CoreEnterprise, FeedChannel
    from orders.services.ingest import orders_ingest

    result = PathResult("in-process")
    enterprise = CoreEnterprise.objects.get(pk=party.enterprise_id)
    orders_ingest(
        enterprise=enterprise,
        payloads=make_orders(f"{run_id}-iw", 100, party.agent_codes),
        channel=FeedChannel.BULK,
    )
    for round_no in range(args.inprocess_rounds):
        payloads = make_orders(f"{run_id}-i{round_no}", args.bulk_size, party.agent_codes)
        start = time.perf_counter()
        ingested = orders_ingest(enterprise=enterprise, payloads=payloads, channel=FeedChannel.BULK)
        wall = time.perf_counter() - start
        if ingested.created != args.bulk_size:
            result.errors.append(f"round {round_no}: {ingested.counts()}")
        result.orders += args.bulk_size
        result.seconds += wall
        result.rates.append(args.bulk_size / wall)
        result.latencies_ms.append(wall * 1000)
    connection.close()
    return result


# --- report ---------------------------------------------------------------------------------


def run_environment(args: argparse.Namespace) -> dict[str, Any]:
    from django.db import connection

    env = environment(
        machine=platform.machine(),
        gunicorn_workers=args.workers,
        bulk_size=args.bulk_size,
        bulk_clients=args.bulk_clients,
        bulk_rounds=args.bulk_rounds,
        webhook_clients=args.webhook_clients,
        webhook_seconds=args.webhook_seconds,
        load_average_at_start=load_average(),
    )
    connection.close()
    return env


def print_table(env: dict[str, Any], results: dict[str, PathResult]) -> dict[str, float]:
    print()
    print(
        f"Order feed ingestion: PostgreSQL {env['postgresql']}, gunicorn {env['gunicorn_workers']} "
        f"sync workers, {env['cpus']} CPUs, Python {env['python']}; load average "
        f"{env['load_average_at_start'][0]} at start, {env['load_average_at_end'][0]} at end"
    )
    head = f"{'path':<38} {'orders/s':>9} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9} {'max ms':>9}"
    print(head)
    print("-" * len(head))
    size = env["bulk_size"]
    labels = {
        "bulk-1": f"bulk HTTP, {size}/request, 1 client",
        f"bulk-{env['bulk_clients']}": f"bulk HTTP, {size}/request, {env['bulk_clients']} clients",
        "webhook": f"webhook HTTP, {env['webhook_clients']} clients",
        "in-process": f"orders_ingest in-process, {size}/call",
    }
    for key, res in results.items():
        rate = f"{res.median_rate:>9,.0f}" if res.rates and not res.errors else f"{'FAILED':>9}"
        print(
            f"{labels[key]:<38} {rate} {percentile(res.latencies_ms, 50):>9.1f} "
            f"{percentile(res.latencies_ms, 95):>9.1f} {percentile(res.latencies_ms, 99):>9.1f} "
            f"{max(res.latencies_ms, default=0.0):>9.1f}"
        )
    floor = results["in-process"].median_rate
    ratios = {
        f"{key}/in-process": round(res.median_rate / floor, 3)
        for key, res in results.items()
        if key.startswith("bulk") and floor
    }
    for name, ratio in ratios.items():
        print(f"ratio {name}: {ratio:.2f}")
    bulk = max(res.median_rate for key, res in results.items() if key.startswith("bulk"))
    verdict = "met" if bulk >= TARGET_BULK_ORDERS_PER_SECOND else "MISSED"
    if any(res.errors for res in results.values()):
        verdict = "not measured: requests failed"
    print(f"target bulk >= {TARGET_BULK_ORDERS_PER_SECOND:,} orders/s: {verdict} ({bulk:,.0f})")
    for key, res in results.items():
        for line in [*res.errors[:3], *res.notes]:
            print(f"  {key}: {line}")
    return ratios


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    deadline = Deadline(args.max_seconds)
    ensure_database(args.database_url, fresh=args.fresh)
    django_setup(args.database_url)
    party = bench_parties(args.agents)
    env = run_environment(args)
    run_id = f"R{int(time.time())}"
    print(f"bench run {run_id} on {urlsplit(args.database_url).path.lstrip('/')}", flush=True)
    results: dict[str, PathResult] = {}
    log_path = Path(tempfile.gettempdir()) / f"scf-bench-gunicorn-{os.getpid()}.log"
    server_args = ["--workers", str(args.workers), "--timeout", str(int(HTTP_TIMEOUT_SECONDS))]
    with gunicorn(args.database_url, server_args, log_path=log_path) as (port, _pid):
        for clients in sorted({1, args.bulk_clients}):
            results[f"bulk-{clients}"] = bench_bulk(port, party, args, run_id, deadline, clients)
        results["webhook"] = bench_webhook(port, party, args, run_id, deadline)
    results["in-process"] = bench_inprocess(party, args, run_id)
    env["load_average_at_end"] = load_average()
    ratios = print_table(env, results)
    if args.json:
        summaries = {key: res.summary() for key, res in results.items()}
        payload = {
            "run_id": run_id,
            "environment": env,
            "target_bulk_orders_per_second": TARGET_BULK_ORDERS_PER_SECOND,
            "ratios": ratios,
            "results": summaries,
        }
        write_json(args.json, payload)
        print(f"results written to {args.json}")
    if any(res.errors for res in results.values()):
        print(f"requests failed; gunicorn's log: {log_path}")
        return 1
    log_path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
