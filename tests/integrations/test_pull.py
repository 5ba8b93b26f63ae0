"""The pull adapter against a real HTTP server that pages orders with an opaque cursor.

The server runs in a thread on 127.0.0.1 and speaks the protocol in ``integrations.feed.pull``:
``GET <url>?cursor=<c>&limit=<n>`` -> ``{"orders": [...], "next_cursor": "<c2>" | null}``.
It keeps every request it saw, so tests can assert what the adapter asked for and sent.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.utils import timezone

from integrations.feed.pull import PollResult, feed_source_poll
from integrations.models import OrderFeedSource
from integrations.tasks import pull_order_feeds
from orders.models import FeedEvent, SalesOrder, SalesOrderLine
from scf import crypto
from scf.celery import app as celery_app
from tests.orders.factories import AgentFactory, EnterpriseFactory, order_payload

GATE_TIMEOUT_SECONDS = 10


@dataclass
class SeenRequest:
    path: str
    source: str | None
    cursor: str | None
    limit: str | None
    authorization: str | None


@dataclass
class SalesSystem:
    """What the fake sales system serves. Cursors are ``"c<offset>"``; ``""`` is the start.

    ``null_on_last_page``: the last non-empty page already says ``next_cursor: null`` (some
    systems do); otherwise the cursor after it is returned and only an empty page says null.
    ``faults``: replies to send instead of the next pages, one per request (``500``, ``"junk"``,
    raw bytes, or any JSON-able body). ``gate``: when set, requests wait for it (to hold a poll mid-flight).
    """

    orders: list[dict[str, Any]] = field(default_factory=list)
    null_on_last_page: bool = False
    endless: bool = False
    faults: list[Any] = field(default_factory=list)
    seen: list[SeenRequest] = field(default_factory=list)
    gate: threading.Event | None = None
    arrived: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def cursors(self) -> list[str | None]:
        return [r.cursor for r in self.seen]

    def reply(self, cursor: str, limit: int) -> tuple[int, bytes]:
        if self.faults:
            fault = self.faults.pop(0)
            if fault == 500:
                return 500, b'{"error": "internal"}'
            if fault == "junk":
                return 200, b'{"orders": [ this is not json'
            if isinstance(fault, bytes):
                return 200, fault
            return 200, json.dumps(fault).encode()
        start = int(cursor[1:]) if cursor else 0
        page = self.orders[start : start + limit]
        end = start + len(page)
        if self.endless:
            next_cursor: str | None = f"c{end + 1}"
        elif not page or (self.null_on_last_page and end >= len(self.orders)):
            next_cursor = None
        else:
            next_cursor = f"c{end}"
        return 200, json.dumps({"orders": page, "next_cursor": next_cursor}).encode()


def _handler(system: SalesSystem) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query, keep_blank_values=True)
            cursor = query.get("cursor", [None])[0]
            limit = query.get("limit", [None])[0]
            system.seen.append(
                SeenRequest(
                    parts.path,
                    query.get("src", [None])[0],
                    cursor,
                    limit,
                    self.headers.get("Authorization"),
                )
            )
            system.arrived.set()
            if system.gate is not None:
                system.gate.wait(GATE_TIMEOUT_SECONDS)
            status, body = system.reply(cursor or "", int(limit or 100))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def sales_system() -> Iterator[SalesSystem]:
    system = SalesSystem()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(system))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    system.url = f"http://{host}:{port}/api/orders"
    try:
        yield system
    finally:
        if system.gate is not None:
            system.gate.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    # The adapter uses requests, which honours proxy variables; the server is on loopback.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def party(db: Any) -> tuple[Any, Any]:
    enterprise = EnterpriseFactory()
    return enterprise, AgentFactory(enterprises=[enterprise])


def _source(system: SalesSystem, enterprise: Any, **kwargs: Any) -> OrderFeedSource:
    kwargs.setdefault("page_size", 2)
    return OrderFeedSource.objects.create(enterprise=enterprise, url=system.url, **kwargs)


def _orders(agent: Any, n: int, *, start: int = 0, version: int = 1) -> list[dict[str, Any]]:
    return [
        order_payload(agent.code, external_id=f"PULL-{i:03d}", version=version)
        for i in range(start, start + n)
    ]


# --- reading pages --------------------------------------------------------------------------


@pytest.mark.django_db
def test_poll_reads_every_page_until_next_cursor_is_null(sales_system, party):
    enterprise, agent = party
    sales_system.orders = _orders(agent, 5)
    source = _source(sales_system, enterprise, page_size=2)

    result = feed_source_poll(source_id=source.pk)

    assert result == PollResult(pages=4, created=5, updated=0, stale=0, rejected=0, error="")
    # Three pages of orders, then the empty page whose next_cursor is null.
    assert sales_system.cursors() == ["", "c2", "c4", "c5"]
    assert {r.limit for r in sales_system.seen} == {"2"}
    assert {r.path for r in sales_system.seen} == {"/api/orders"}
    stored = SalesOrder.objects.filter(enterprise=enterprise)
    assert sorted(stored.values_list("external_id", flat=True)) == [
        f"PULL-{i:03d}" for i in range(5)
    ]
    assert set(stored.values_list("agent_id", flat=True)) == {agent.pk}
    assert SalesOrderLine.objects.filter(order__enterprise=enterprise).count() == 10


@pytest.mark.django_db
def test_cursor_is_stored_and_second_poll_fetches_only_new_orders(sales_system, party):
    enterprise, agent = party
    sales_system.orders = _orders(agent, 3)
    source = _source(sales_system, enterprise, page_size=2)
    feed_source_poll(source_id=source.pk)
    source.refresh_from_db()
    assert source.cursor == "c3"
    assert source.last_polled_at is not None and source.last_error == ""
    assert source.lease_until is None

    sales_system.orders += _orders(agent, 2, start=3)
    sales_system.seen.clear()
    result = feed_source_poll(source_id=source.pk)

    assert sales_system.cursors() == ["c3", "c5"]
    assert (result.created, result.updated, result.stale, result.rejected) == (2, 0, 0, 0)
    source.refresh_from_db()
    assert source.cursor == "c5"
    assert SalesOrder.objects.filter(enterprise=enterprise).count() == 5


@pytest.mark.django_db
def test_caught_up_source_polls_one_empty_page_and_writes_nothing(sales_system, party):
    enterprise, _ = party
    source = _source(sales_system, enterprise)

    result = feed_source_poll(source_id=source.pk)

    assert result == PollResult(pages=1)
    assert sales_system.cursors() == [""]
    assert not SalesOrder.objects.exists()
    assert not FeedEvent.objects.exists()
    source.refresh_from_db()
    assert source.cursor == "" and source.last_polled_at is not None


@pytest.mark.django_db
def test_same_cursor_back_means_caught_up(sales_system, party):
    enterprise, agent = party
    sales_system.faults = [{"orders": _orders(agent, 1), "next_cursor": "c9"}]
    source = _source(sales_system, enterprise, cursor="c9")

    result = feed_source_poll(source_id=source.pk)

    assert (result.pages, result.created) == (1, 1)
    assert sales_system.cursors() == ["c9"]


@pytest.mark.django_db
def test_poll_stops_after_max_pages_and_keeps_its_place(sales_system, party):
    enterprise, agent = party
    sales_system.orders = _orders(agent, 20)
    sales_system.endless = True
    source = _source(sales_system, enterprise, page_size=1)

    result = feed_source_poll(source_id=source.pk, max_pages=3)

    assert (result.pages, result.created, result.error) == (3, 3, "")
    assert sales_system.cursors() == ["", "c2", "c4"]
    source.refresh_from_db()
    assert source.cursor == "c6"  # the next poll starts after the last page it applied
    assert source.lease_until is None


# --- idempotency and bad rows ---------------------------------------------------------------


@pytest.mark.django_db
def test_re_served_page_is_harmless(sales_system, party):
    enterprise, agent = party
    # This system says null on its last page, so the cursor stays at that page's start and the
    # next poll reads the page again.
    sales_system.null_on_last_page = True
    sales_system.orders = _orders(agent, 3)
    source = _source(sales_system, enterprise, page_size=2)
    first = feed_source_poll(source_id=source.pk)
    source.refresh_from_db()
    assert (first.pages, first.created) == (2, 3)
    assert source.cursor == "c2"
    before = dict(SalesOrder.objects.values_list("external_id", "updated_at"))

    again = feed_source_poll(source_id=source.pk)

    assert sales_system.cursors() == ["", "c2", "c2"]
    assert (again.created, again.updated, again.stale) == (0, 0, 1)
    assert dict(SalesOrder.objects.values_list("external_id", "updated_at")) == before
    assert SalesOrderLine.objects.count() == 6

    # The same page served again with a newer version of the order does apply.
    sales_system.orders[2] = order_payload(
        agent.code, external_id="PULL-002", version=2, amount="42.00"
    )
    newer = feed_source_poll(source_id=source.pk)
    assert (newer.created, newer.updated, newer.stale) == (0, 1, 0)
    order = SalesOrder.objects.get(external_id="PULL-002")
    assert (order.version, order.amount) == (2, 42)
    assert sorted(order.lines.values_list("unit_price", flat=True)) == [21, 21]


@pytest.mark.django_db
def test_rewound_cursor_rereads_everything_as_stale(sales_system, party):
    enterprise, agent = party
    sales_system.orders = _orders(agent, 4, version=3)
    source = _source(sales_system, enterprise)
    feed_source_poll(source_id=source.pk)
    OrderFeedSource.objects.filter(pk=source.pk).update(cursor="")

    result = feed_source_poll(source_id=source.pk)

    assert (result.created, result.updated, result.stale) == (0, 0, 4)
    assert set(SalesOrder.objects.values_list("version", flat=True)) == {3}
    assert SalesOrder.objects.count() == 4


@pytest.mark.django_db
def test_invalid_rows_are_rejected_and_valid_rows_apply(sales_system, party):
    enterprise, agent = party
    good_a, bad_amount, unknown_agent, good_b = _orders(agent, 4)
    bad_amount["amount"] = "12.345"
    unknown_agent["agent_code"] = "AG-NOBODY"
    sales_system.orders = [good_a, bad_amount, unknown_agent, good_b, "not an order"]
    source = _source(sales_system, enterprise, page_size=10)

    result = feed_source_poll(source_id=source.pk)

    assert (result.created, result.rejected, result.error) == (2, 3, "")
    assert set(SalesOrder.objects.values_list("external_id", flat=True)) == {
        good_a["external_id"],
        good_b["external_id"],
    }
    log = FeedEvent.objects.get(channel="pull")
    assert log.outcome == "applied" and log.error_code == "invalid_orders"
    assert log.row_count == 5
    assert log.counts == {"created": 2, "updated": 0, "stale": 0, "rejected": 3}
    errors = {e["row"]: e for e in log.errors}
    assert set(errors) == {1, 2, 4}
    assert errors[1]["external_id"] == bad_amount["external_id"] and "amount" in errors[1]["fields"]
    assert "agent_code" in errors[2]["fields"]
    source.refresh_from_db()
    assert source.cursor == "c5" and source.last_error == ""


@pytest.mark.django_db
def test_page_of_only_invalid_rows_is_logged_rejected_and_passed(sales_system, party):
    enterprise, agent = party
    bad = _orders(agent, 2)
    for order in bad:
        order["currency"] = "XXQ"
    sales_system.orders = bad
    source = _source(sales_system, enterprise)

    result = feed_source_poll(source_id=source.pk)

    assert (result.created, result.rejected) == (0, 2)
    log = FeedEvent.objects.get(channel="pull")
    assert log.outcome == "rejected" and log.counts["rejected"] == 2
    source.refresh_from_db()
    assert source.cursor == "c2"  # a bad page is reported, not retried forever
    assert not SalesOrder.objects.exists()


@pytest.mark.django_db
def test_row_for_another_enterprise_is_rejected_not_fatal(sales_system, party):
    enterprise, agent = party
    good, foreign = _orders(agent, 2)
    foreign["enterprise_code"] = "SOMEONE-ELSE"
    sales_system.orders = [good, foreign]
    source = _source(sales_system, enterprise)

    result = feed_source_poll(source_id=source.pk)

    assert (result.created, result.rejected, result.error) == (1, 1, "")
    assert list(SalesOrder.objects.values_list("external_id", flat=True)) == [good["external_id"]]
    (error,) = FeedEvent.objects.get(channel="pull").errors
    assert error["row"] == 1 and "enterprise_code" in error["fields"]
    source.refresh_from_db()
    assert source.cursor == "c2" and source.last_error == ""


@pytest.mark.django_db
def test_feed_log_records_each_page(sales_system, party):
    enterprise, agent = party
    sales_system.orders = _orders(agent, 5)
    source = _source(sales_system, enterprise, page_size=2)

    feed_source_poll(source_id=source.pk)

    logs = list(FeedEvent.objects.filter(enterprise=enterprise).order_by("id"))
    assert [log.channel for log in logs] == ["pull"] * 3
    assert [log.event_type for log in logs] == ["batch:start", "batch:c2", "batch:c4"]
    assert [log.row_count for log in logs] == [2, 2, 1]
    assert [log.counts["created"] for log in logs] == [2, 2, 1]
    assert {log.outcome for log in logs} == {"applied"}
    assert all(log.event_id == "" for log in logs)


# --- failures -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_http_500_records_last_error_and_keeps_cursor(sales_system, party):
    enterprise, agent = party
    sales_system.orders = _orders(agent, 4)
    source = _source(sales_system, enterprise, page_size=2)
    # First page fine, then the server fails.
    sales_system.faults = [
        {"orders": sales_system.orders[:2], "next_cursor": "c2"},
        500,
    ]

    result = feed_source_poll(source_id=source.pk)

    assert result.pages == 1 and result.created == 2
    assert "500" in result.error and "HTTPError" in result.error
    source.refresh_from_db()
    assert source.cursor == "c2"
    assert "500" in source.last_error
    assert source.lease_until is None
    assert SalesOrder.objects.count() == 2

    # The server recovers: the next poll resumes where the last good page left off.
    sales_system.seen.clear()
    recovered = feed_source_poll(source_id=source.pk)
    assert sales_system.cursors() == ["c2", "c4"]
    assert (recovered.created, recovered.error) == (2, "")
    source.refresh_from_db()
    assert source.last_error == "" and source.cursor == "c4"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("junk", "Malformed JSON"),
        ({"orders": "PULL-1"}, '{"orders": [...]}'),
        (["an", "array"], '{"orders": [...]}'),
        ({"orders": [], "next_cursor": 7}, "next_cursor must be a string"),
    ],
    ids=["malformed-json", "orders-not-a-list", "not-an-object", "cursor-not-a-string"],
)
def test_bad_body_records_last_error_and_keeps_cursor(sales_system, party, fault, expected):
    enterprise, _ = party
    source = _source(sales_system, enterprise, cursor="c7")
    sales_system.faults = [fault]

    result = feed_source_poll(source_id=source.pk)

    assert result.pages == 0 and expected in result.error
    source.refresh_from_db()
    assert source.cursor == "c7"
    assert expected in source.last_error
    assert source.last_polled_at is not None and source.lease_until is None
    assert not FeedEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fault", "caps", "expected"),
    [
        (b"[" * 50_000, {}, "JsonTooDeep"),
        ("lines", {"ORDER_BULK_MAX_LINES": 3}, "TooManyLines"),
        ("lines", {"ORDER_BULK_MAX_ROWS": 1}, "TooManyOrders"),
        ("lines", {"ORDER_BULK_MAX_BYTES": 200}, "larger than 200 bytes"),
    ],
    ids=["nested-50000-deep", "too-many-lines", "too-many-orders", "too-many-bytes"],
)
def test_a_page_past_the_limits_of_a_bulk_request_is_an_error_and_keeps_the_cursor(
    sales_system, party, settings, fault, caps, expected
):
    """A page has the limits of a bulk request; a deep one used to raise RecursionError out of
    the poll (the task failed, nothing recorded)."""
    enterprise, agent = party
    for name, value in caps.items():
        setattr(settings, name, value)
    source = _source(sales_system, enterprise, cursor="c7")
    two_orders = {"orders": _orders(agent, 2), "next_cursor": "c9"}
    sales_system.faults = [two_orders if fault == "lines" else fault]

    result = feed_source_poll(source_id=source.pk)

    assert result.pages == 0 and expected in result.error, result
    source.refresh_from_db()
    assert source.cursor == "c7" and expected in source.last_error
    assert not SalesOrder.objects.exists() and not FeedEvent.objects.exists()


@pytest.mark.django_db
def test_unreachable_server_records_last_error(party):
    enterprise, _ = party
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = OrderFeedSource.objects.create(
        enterprise=enterprise, url=f"http://127.0.0.1:{port}/orders", cursor="c1"
    )

    result = feed_source_poll(source_id=source.pk)

    assert result.error.startswith("ConnectionError")
    source.refresh_from_db()
    assert source.last_error.startswith("ConnectionError") and source.cursor == "c1"


# --- credentials ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_configured_authorization_header_is_sent(sales_system, party):
    enterprise, agent = party
    sales_system.orders = _orders(agent, 3)
    source = _source(
        sales_system, enterprise, auth_header_encrypted=crypto.encrypt("Bearer sales-token-123")
    )
    assert "sales-token-123" not in source.auth_header_encrypted

    feed_source_poll(source_id=source.pk)

    assert len(sales_system.seen) == 3
    assert {r.authorization for r in sales_system.seen} == {"Bearer sales-token-123"}


@pytest.mark.django_db
def test_no_authorization_header_when_none_configured(sales_system, party):
    enterprise, _ = party
    source = _source(sales_system, enterprise)

    feed_source_poll(source_id=source.pk)

    assert [r.authorization for r in sales_system.seen] == [None]


# --- lease ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_lease_stops_a_concurrent_second_poll(sales_system):
    enterprise = EnterpriseFactory()
    agent = AgentFactory(enterprises=[enterprise])
    sales_system.orders = _orders(agent, 2)
    sales_system.gate = threading.Event()
    source = _source(sales_system, enterprise)
    results: list[PollResult] = []

    def first_poll() -> None:
        try:
            results.append(feed_source_poll(source_id=source.pk))
        finally:
            connection.close()

    worker = threading.Thread(target=first_poll)
    worker.start()
    try:
        # The first poll holds the lease while the sales system is answering it.
        assert sales_system.arrived.wait(GATE_TIMEOUT_SECONDS)
        source.refresh_from_db()
        assert source.lease_until is not None and source.lease_until > timezone.now()
        second = feed_source_poll(source_id=source.pk)
    finally:
        sales_system.gate.set()
        worker.join(GATE_TIMEOUT_SECONDS)

    assert second == PollResult(error="busy")
    assert len(sales_system.seen) == 2  # both from the first poll: page and empty page
    assert results and (results[0].created, results[0].error) == (2, "")
    assert SalesOrder.objects.filter(enterprise=enterprise).count() == 2
    source.refresh_from_db()
    assert source.lease_until is None


@pytest.mark.django_db
def test_expired_lease_is_taken_over(sales_system, party):
    enterprise, _ = party
    held = _source(sales_system, enterprise, lease_until=timezone.now() + dt.timedelta(minutes=1))
    expired = _source(
        sales_system, enterprise, lease_until=timezone.now() - dt.timedelta(seconds=1)
    )

    assert feed_source_poll(source_id=held.pk) == PollResult(error="busy")
    assert feed_source_poll(source_id=expired.pk).error == ""
    assert len(sales_system.seen) == 1
    expired.refresh_from_db()
    assert expired.lease_until is None and expired.last_polled_at is not None


@pytest.mark.django_db
def test_disabled_source_is_not_polled(sales_system, party):
    enterprise, _ = party
    source = _source(sales_system, enterprise, enabled=False)

    assert feed_source_poll(source_id=source.pk).pages == 0
    assert sales_system.seen == []
    source.refresh_from_db()
    assert source.last_polled_at is None


# --- the beat task --------------------------------------------------------------------------


@pytest.mark.django_db
def test_pull_order_feeds_task_polls_only_due_sources(sales_system, party, monkeypatch):
    # The per-source polls the beat task queues run in-process here, whatever the broker.
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
    enterprise, agent = party
    sales_system.orders = _orders(agent, 3)
    base = sales_system.url
    never_polled = OrderFeedSource.objects.create(
        enterprise=enterprise, url=f"{base}?src=due", page_size=2
    )
    interval_passed = OrderFeedSource.objects.create(
        enterprise=enterprise,
        url=f"{base}?src=stale",
        page_size=2,
        poll_interval_seconds=60,
        last_polled_at=timezone.now() - dt.timedelta(seconds=61),
    )
    recent = OrderFeedSource.objects.create(
        enterprise=enterprise,
        url=f"{base}?src=recent",
        poll_interval_seconds=60,
        last_polled_at=timezone.now() - dt.timedelta(seconds=5),
    )
    disabled = OrderFeedSource.objects.create(
        enterprise=enterprise, url=f"{base}?src=off", enabled=False
    )

    queued = pull_order_feeds.delay().get()

    assert queued == 2
    for source in (never_polled, interval_passed):
        source.refresh_from_db()
        assert source.cursor == "c3" and source.last_error == ""
    for source in (recent, disabled):
        before = source.last_polled_at
        source.refresh_from_db()
        assert source.cursor == "" and source.last_polled_at == before
    # Both due sources read the same three orders: the second found them already stored.
    assert SalesOrder.objects.count() == 3
    assert FeedEvent.objects.filter(channel="pull").count() == 4
    assert sorted(r.source for r in sales_system.seen) == ["due"] * 3 + ["stale"] * 3
