"""Redis hangs under load (issue 18, item 1): the web tier must not stall with it.

A throwaway platform (``chaos/cluster.py``: its own PostgreSQL, its own Redis as broker *and*
cache/rate-limit store, gunicorn with 3 sync workers, a Celery worker and beat) runs steady load:

* page loads: an agent signed in to the portal reads ``/``, ``/orders/`` and ``/loans/``;
* ``GET /healthz`` from three pollers (a load balancer's health checks);
* finance clicks through the API (quote, then finance with an Idempotency-Key; a 429, 503 or a
  dropped connection is retried with the same key);
* finance clicks through the portal (the quote page, then the confirm form's POST).

After ``--before`` seconds the Redis process is frozen with ``SIGSTOP`` (not stopped: its socket
stays open and the kernel still completes connections, but nothing answers), for ``--freeze``
seconds, then resumed with ``SIGCONT``; the load runs ``--after`` seconds more. Each request's
latency is filed under the phase it was sent in (before, frozen, after).

Printed: latency percentiles per kind of request and phase, replies by status, and the checks.
Passes when, while Redis is frozen,

* no request of any kind took longer than ``--stall`` seconds (default 3 s: before the fix, a
  health check waited for Redis to resume, and three of them held every sync worker);
* pages and finance clicks kept their latency: p90 at most ``--slack`` (default 1 s) above the
  p90 before the freeze;
* no 5xx at all (nothing here truly needs Redis: the health check answers ``degraded``);

and, once everything has settled, nothing was lost: every approved loan was paid out (the
payments whose messages could not be published are found by the sweeper), each exactly once at
the bank and in the ledger, no order with two loans, and ``manage.py ledger_check`` is clean.
"""

from __future__ import annotations

import argparse
import math
import queue
import re
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from chaos.cluster import Cluster
from chaos.soak import reconcile, settle_down

PASSWORD = "pw-for-tests-1"  # the test factories' password
TIMEOUT = 60.0  # long enough to measure a stall, not only to note it
KINDS = ("page", "healthz", "api finance", "portal finance")
PHASES = ("before", "frozen", "after")
RETRYABLE = {429, 502, 503, 504}


class Recorder:
    """Every request: its kind, the phase it was sent in, its latency and its status."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.phase = "warm-up"
        self.latency: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.statuses: Counter[tuple[str, str, str]] = Counter()
        self.errors: list[str] = []
        self.finance: dict[int, int] = {}  # order id -> final status

    def timed(
        self, kind: str, send: Callable[..., requests.Response], url: str, **kwargs: Any
    ) -> requests.Response | None:
        """``send(url, timeout=..., **kwargs)``, timed and filed; None for no reply."""
        phase = self.phase
        started = time.monotonic()
        try:
            response: requests.Response | None = send(url, timeout=TIMEOUT, **kwargs)
            status = str(response.status_code) if response is not None else "none"
        except requests.Timeout:
            response, status = None, "timeout"
        except requests.ConnectionError:
            response, status = None, "no-connection"
        seconds = time.monotonic() - started
        with self.lock:
            if phase in PHASES:
                self.latency[(kind, phase)].append(seconds)
                self.statuses[(kind, phase, status)] += 1
            if response is not None and response.status_code >= 500:
                self.errors.append(f"{kind} {response.status_code}: {response.text[:200]}")
        return response


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


# --- data --------------------------------------------------------------------------------------


def setup_data(api_agents: int, orders_each: int) -> tuple[list[tuple[str, list[int]]], Any]:
    """Agents with lines and confirmed orders: (API token, order ids) for the API clickers, and
    one more agent (username, order ids) for the portal, whose session also loads the pages."""
    import django

    django.setup()
    from rest_framework.authtoken.models import Token

    from orders.models import SalesOrder
    from tests.lending.factories import CreditLineFactory, ProgramFactory
    from tests.orders.factories import AgentFactory, OrderFactory, UserFactory

    program = ProgramFactory(limit=Decimal("1000000000.00"))

    def agent_with_orders() -> tuple[Any, list[int]]:
        agent = AgentFactory(enterprises=[program.enterprise])
        CreditLineFactory(agent=agent, program=program, limit=Decimal("500000000.00"))
        user = UserFactory(role="agent", agent=agent)
        rows = [
            OrderFactory.build(agent=agent, enterprise=program.enterprise, amount=Decimal(20000))
            for _ in range(orders_each)
        ]
        return user, [order.pk for order in SalesOrder.objects.bulk_create(rows)]

    api = []
    for _ in range(api_agents):
        user, orders = agent_with_orders()
        api.append((Token.objects.create(user=user).key, orders))
    portal_user, portal_orders = agent_with_orders()
    return api, (portal_user.username, portal_orders)


def signed_in(base: str, username: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{base}/accounts/login/", timeout=TIMEOUT)
    response = session.post(
        f"{base}/accounts/login/",
        data={
            "username": username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        timeout=TIMEOUT,
    )
    if "sessionid" not in session.cookies:
        raise SystemExit(f"could not sign in as {username}: {response.status_code}")
    return session


# --- load --------------------------------------------------------------------------------------


def page_loop(base: str, session: requests.Session, rec: Recorder, stop: threading.Event) -> None:
    paths = ["/", "/orders/?financeable=1", "/loans/"]
    i = 0
    while not stop.is_set():
        path = paths[i % len(paths)]
        rec.timed("page", session.get, f"{base}{path}")
        i += 1
        time.sleep(0.1)


def health_loop(base: str, rec: Recorder, stop: threading.Event) -> None:
    while not stop.is_set():
        rec.timed("healthz", requests.get, f"{base}/healthz")
        time.sleep(0.5)


def api_finance_loop(
    base: str, rec: Recorder, stop: threading.Event, work: queue.Queue[tuple[str, int]]
) -> None:
    while not stop.is_set():
        try:
            token, order_id = work.get_nowait()
        except queue.Empty:
            return
        auth = {"Authorization": f"Token {token}"}
        url = f"{base}/api/v1/orders/{order_id}"
        rec.timed("api finance", requests.post, f"{url}/quote/", headers=auth)
        key = {"Idempotency-Key": str(uuid.uuid4()), **auth}
        status = 0
        for _ in range(60):  # the same key until a final answer
            response = rec.timed("api finance", requests.post, f"{url}/finance/", headers=key)
            status = response.status_code if response is not None else 0
            if status and status not in RETRYABLE:
                break
            time.sleep(0.5)
        with rec.lock:
            rec.finance[order_id] = status
        time.sleep(0.2)


KEY_FIELD = re.compile(r'name="idempotency_key" value="([^"]+)"')


def portal_finance_loop(
    base: str, session: requests.Session, rec: Recorder, stop: threading.Event, orders: list[int]
) -> None:
    for order_id in orders:
        if stop.is_set():
            return
        quote = rec.timed("portal finance", session.get, f"{base}/orders/{order_id}/quote/")
        found = KEY_FIELD.search(quote.text) if quote is not None else None
        if found is None:
            time.sleep(0.5)
            continue
        form = {
            "idempotency_key": found.group(1),
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        }
        status = 0
        for _ in range(60):
            response = rec.timed(
                "portal finance", session.post, f"{base}/orders/{order_id}/finance/", data=form
            )
            status = response.status_code if response is not None else 0
            if status and status not in RETRYABLE:
                break
            time.sleep(0.5)
        with rec.lock:
            rec.finance[order_id] = status
        time.sleep(0.3)


# --- report ------------------------------------------------------------------------------------


def latency_table(rec: Recorder) -> list[str]:
    lines = [f"{'requests':<15} {'phase':<7} {'n':>5} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}"]
    for kind in KINDS:
        for phase in PHASES:
            values = rec.latency.get((kind, phase), [])
            figures = [percentile(values, q) for q in (0.5, 0.9, 0.99, 1.0)]
            shown = " ".join(
                f"{v * 1000:6.0f}ms" if not math.isnan(v) else "      -" for v in figures
            )
            lines.append(f"{kind:<15} {phase:<7} {len(values):>5} {shown}")
    return lines


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=float, default=20, help="seconds of load before")
    parser.add_argument("--freeze", type=float, default=15, help="seconds Redis stays frozen")
    parser.add_argument("--after", type=float, default=20, help="seconds of load after")
    parser.add_argument("--stall", type=float, default=3.0, help="no request may take longer")
    parser.add_argument("--slack", type=float, default=1.0, help="p90 may grow by this much")
    parser.add_argument("--clients", type=int, default=3, help="API finance client threads")
    parser.add_argument("--pg-port", type=int, default=5498)
    parser.add_argument("--redis-port", type=int, default=6389)
    parser.add_argument("--web-port", type=int, default=8098)
    parser.add_argument("--dir", type=Path, default=None)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    duration = args.before + args.freeze + args.after
    cluster = Cluster(
        args.dir,
        pg_port=args.pg_port,
        redis_port=args.redis_port,
        web_port=args.web_port,
        cache=True,
    )
    rec = Recorder()
    stop = threading.Event()
    base = cluster.url
    frozen = False
    try:
        cluster.start()
        import os

        os.environ.update(cluster.env)
        orders_each = int(duration * 3) + 20
        api, (username, portal_orders) = setup_data(args.clients * 2, orders_each)
        session = signed_in(base, username)
        pages = signed_in(base, username)
        work: queue.Queue[tuple[str, int]] = queue.Queue()
        for token, orders in api:
            for order_id in orders:
                work.put((token, order_id))
        threads = [threading.Thread(target=page_loop, args=(base, pages, rec, stop))]
        threads += [threading.Thread(target=health_loop, args=(base, rec, stop)) for _ in range(3)]
        threads += [
            threading.Thread(target=api_finance_loop, args=(base, rec, stop, work))
            for _ in range(args.clients)
        ]
        threads.append(
            threading.Thread(
                target=portal_finance_loop, args=(base, session, rec, stop, portal_orders)
            )
        )
        for thread in threads:
            thread.daemon = True
            thread.start()
        time.sleep(3)  # warm-up, not measured
        print(f"platform up in {cluster.base}; load running", flush=True)
        rec.phase = "before"
        time.sleep(args.before)
        rec.phase = "frozen"
        cluster.redis.freeze()
        frozen = True
        print(f"Redis frozen (SIGSTOP) for {args.freeze:.0f}s", flush=True)
        time.sleep(args.freeze)
        cluster.redis.thaw()
        resumed = time.monotonic()
        frozen = False
        rec.phase = "after"
        print("Redis resumed (SIGCONT)", flush=True)
        time.sleep(args.after)
        rec.phase = "done"
        stop.set()
        for thread in threads:
            thread.join(timeout=TIMEOUT + 5)
        print("load stopped; waiting for every payment to be final", flush=True)
        left = settle_down(180)
        settled = time.monotonic() - resumed
        check = cluster.manage("ledger_check", check=False)
        numbers = reconcile()
        web_restarts = cluster.web.starts - 1
        worker_alive = cluster.worker.alive()
    finally:
        stop.set()
        if frozen:
            cluster.redis.thaw()
        cluster.close()

    print("\n==== hung Redis: summary ====")
    print(
        f"{args.before:.0f}s of load, Redis frozen {args.freeze:.0f}s, {args.after:.0f}s after; "
        f"logs in {cluster.base}"
    )
    print("\n".join(latency_table(rec)))
    by_status: dict[str, dict[str, int]] = defaultdict(dict)
    for (kind, phase, status), n in sorted(rec.statuses.items()):
        by_status[f"{kind} {phase}"][status] = n
    print("replies by status:")
    for name, counts in by_status.items():
        print(f"  {name}: {counts}")
    for error in rec.errors[:10]:
        print(f"  {error}")
    print(f"web restarts: {web_restarts}; worker alive at the end: {worker_alive}")
    print(
        f"finance clicks finished: {len(rec.finance)}; by final status: "
        f"{dict(Counter(rec.finance.values()))}"
    )
    unsent = sum(
        int(found.group(1))
        for found in re.finditer(
            r"could not send (\d+) values", (cluster.base / "web.log").read_text()
        )
    )
    print(f"payments the web processes could not publish (left to the sweeper): {unsent}")
    print(f"every payment final {settled:.0f}s after Redis resumed")
    print(f"disbursements not final after the wait: {left or 0}")
    for key, value in numbers.items():
        print(f"{key}: {value}")
    print(f"ledger_check exit {check.returncode}: {check.stdout.strip()[-1000:]}")

    failures = []
    for kind in KINDS:
        during = rec.latency.get((kind, "frozen"), [])
        if during and max(during) > args.stall:
            failures.append(f"{kind}: slowest while frozen {max(during):.1f}s > {args.stall}s")
    for kind in ("page", "api finance", "portal finance"):
        before = percentile(rec.latency.get((kind, "before"), []), 0.9)
        during = percentile(rec.latency.get((kind, "frozen"), []), 0.9)
        if not during <= before + args.slack:  # also catches no request finishing at all
            failures.append(f"{kind}: p90 {before:.2f}s before, {during:.2f}s while frozen")
    fives = sum(n for (_, _, status), n in rec.statuses.items() if status.startswith("5"))
    if fives:
        failures.append(f"{fives} replies with a 5xx")
    statuses = numbers["loans_by_status"]
    checks = {
        "every payment final": not left,
        "no loan left approved or disbursing": not (
            statuses.get("approved") or statuses.get("disbursing")
        ),
        "bank = ledger": numbers["count_difference"] == 0 and numbers["sum_difference"] == 0,
        "one bank request per payment": numbers["bank_side_duplicates"] == 0,
        "no order with two loans": numbers["orders_with_two_loans"] == 0,
        "ledger_check clean": check.returncode == 0,
        "every click got a final answer": 0 not in rec.finance.values(),
    }
    failures += [name for name, held in checks.items() if not held]
    for failure in failures:
        print(f"FAILED: {failure}")
    print("RESULT:", "PASS" if not failures else "FAIL")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
