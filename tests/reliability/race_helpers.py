"""Helpers for the race tests: real threads, each with its own database connection.

``run_at_once`` releases every call together from a barrier and returns, per call, its result or
the exception it raised (the Django test client re-raises a view's exception, so a deadlock or
serialization failure surfaces here instead of being hidden in a thread). ``server_errors`` scans
finance/feed replies for anything a client must never see: a 5xx, a reply that is not the API's
error shape, or a database error leaking through.

How many clients race at once is sized from the server (``race_clients``): each racing thread
holds a connection of its own, and a stock PostgreSQL allows 100 in all. A race runs the clients
it wants when the server has room for them beside the connections already open and a margin for
the rest of the suite, fewer when it has not (the calls are then spread over the threads it
got), and fails with the figures when even its floor, the fewest clients that still prove its
point, would not fit.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from django.db import connection, connections

from orders.models import SalesOrder, SalesOrderLine

T = TypeVar("T")

# What a database error reaching a client would look like in a reply body.
DB_ERROR_MARKERS = (b"deadlock", b"could not serialize", b"IntegrityError", b"OperationalError")


# Connections a race leaves free for everything else: the test's own connections opened later
# (a fixture's, a lazily connected alias), a Celery worker or a second test process.
SPARE_CONNECTIONS = 10


def race_clients(wanted: int, *, floor: int) -> int:
    """How many clients (threads, each with its own connection) a race may run at once.

    ``wanted`` if the server has that many connections free, else as many as it has (its
    ``max_connections``, less the slots reserved for superusers, the client connections open now
    on any database, and ``SPARE_CONNECTIONS``). Fails the test, saying why, when fewer than
    ``floor`` are free: below that the race would no longer prove what it tests.
    """
    floor = min(floor, wanted)
    if connection.vendor != "postgresql":
        return wanted
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('max_connections')::int,"
            " current_setting('superuser_reserved_connections')::int,"
            " (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
        )
        allowed, reserved, open_now = cursor.fetchone()
    free = allowed - reserved - open_now - SPARE_CONNECTIONS
    if free < floor:
        pytest.fail(
            f"PostgreSQL allows {allowed} connections ({reserved} reserved for superusers) and "
            f"{open_now} are open: {free} are free for this race beside {SPARE_CONNECTIONS} kept "
            f"spare, and it needs at least {floor} clients at once. Raise max_connections or "
            "close the other clients.",
            pytrace=False,
        )
    return min(wanted, free)


@dataclass(frozen=True)
class Failed:
    """A call that raised instead of returning."""

    error: BaseException

    def __repr__(self) -> str:
        return f"Failed({type(self.error).__name__}: {self.error})"


def run_at_once(calls: Sequence[Callable[[], T]], *, floor: int | None = None) -> list[T | Failed]:
    """Run ``calls`` on one thread per call, all released together, or on as many threads as the
    server has connections for (``race_clients``; at least ``floor``, default every call).

    Each thread uses its own connection (closed when the thread ends) and takes the calls
    ``i, i + threads, ...``; the results come back in the order of ``calls``.
    """
    count = race_clients(len(calls), floor=len(calls) if floor is None else floor)
    barrier = threading.Barrier(count, timeout=120)
    results: list[Any] = [None] * len(calls)

    def work(first: int) -> None:
        try:
            barrier.wait()
            for index in range(first, len(calls), count):
                try:
                    results[index] = calls[index]()
                except BaseException as exc:
                    results[index] = Failed(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a racing thread hung"
    return results


class Racers:
    """A fixed set of threads that keep their database connections from one race to the next.

    Opening a PostgreSQL connection costs a backend fork; a test that races many times (seeds)
    reuses the same threads and connections: ``wanted`` of them, or as many as the server has
    room for and at least ``floor`` (``race_clients``); ``size`` says how many. ``close`` closes
    them (call it before the test ends, or the test database cannot be dropped).
    """

    def __init__(self, wanted: int, *, floor: int) -> None:
        self.size = race_clients(wanted, floor=floor)
        self._executor = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="racer")

    def _everyone(self, task: Callable[[int, threading.Barrier], None]) -> None:
        # Each of the ``size`` tasks waits at the barrier, so each runs on its own thread.
        barrier = threading.Barrier(self.size, timeout=120)
        futures = [self._executor.submit(task, i, barrier) for i in range(self.size)]
        for future in futures:
            future.result(timeout=300)

    def run(self, calls: Sequence[Callable[[], T]]) -> list[T | Failed]:
        """Run ``calls`` spread over the threads, all released together; results in order."""
        results: list[Any] = [None] * len(calls)

        def work(first: int, barrier: threading.Barrier) -> None:
            barrier.wait()
            for index in range(first, len(calls), self.size):
                try:
                    results[index] = calls[index]()
                except BaseException as exc:
                    results[index] = Failed(exc)

        self._everyone(work)
        return results

    def close(self) -> None:
        def close_connection(_: int, barrier: threading.Barrier) -> None:
            barrier.wait()
            close_all()

        self._everyone(close_connection)
        self._executor.shutdown(wait=True)


def failures(results: Sequence[Any]) -> list[Failed]:
    return [r for r in results if isinstance(r, Failed)]


def server_errors(responses: Sequence[Any]) -> list[tuple[int, bytes]]:
    """Replies a client must never get: exceptions, 5xx, non-JSON, or a leaked database error."""
    bad: list[tuple[int, bytes]] = []
    for response in responses:
        if isinstance(response, Failed):
            bad.append((0, repr(response).encode()))
            continue
        body = response.content
        leaked = any(marker in body for marker in DB_ERROR_MARKERS)
        if response.status_code >= 500 or leaked or response["Content-Type"] != "application/json":
            bad.append((response.status_code, body[:300]))
    return bad


def clean_refusal(response: Any, statuses: tuple[int, ...] = (409, 422)) -> bool:
    """A 409/422 in the API's error shape with a machine-readable code."""
    if response.status_code not in statuses:
        return False
    body = response.json()
    return isinstance(body.get("code"), str) and bool(body["code"]) and "detail" in body


def database_deadlocks() -> int:
    """Deadlocks PostgreSQL has detected in this database so far (its statistics counter)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def close_all() -> None:
    for conn in connections.all():
        conn.close()


def confirmed_orders(agent: Any, enterprise: Any, amounts: Sequence[Decimal]) -> list[SalesOrder]:
    """Financeable orders (confirmed, dated today, one line each), written in two statements."""
    now = dt.datetime.now(dt.UTC)
    batch = uuid.uuid4().hex[:10]
    orders = SalesOrder.objects.bulk_create(
        SalesOrder(
            enterprise=enterprise,
            agent=agent,
            external_id=f"SO-{batch}-{i:04d}",
            amount=amount,
            currency="CNY",
            status="confirmed",
            order_date=dt.date.today(),
            version=1,
            created_at=now,
            updated_at=now,
        )
        for i, amount in enumerate(amounts)
    )
    SalesOrderLine.objects.bulk_create(
        SalesOrderLine(
            order=o, line_no=1, sku="SKU-1", quantity=1, unit_price=o.amount, amount=o.amount
        )
        for o in orders
    )
    return orders
