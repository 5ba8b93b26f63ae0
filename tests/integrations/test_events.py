"""Outbound loan events: which changes are announced, once each; signed delivery from the outbox,
retried with backoff, the same event id on every attempt.

The core enterprise's receiver is a real HTTP server in a thread on 127.0.0.1 that answers with
scripted status codes and keeps every request it got.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from integrations.events import (
    ACCELERATED,
    backoff_seconds,
    event_body,
    event_deliver,
    loan_events_sweep,
    outbound_events_due,
)
from integrations.feed.signing import sign
from integrations.models import OutboundEvent, OutboundEventStatus, WebhookEndpoint
from integrations.tasks_events import (
    dispatch_due_events,
    sweep_cancelled_orders,
    sweep_loan_events,
)
from lending.models import Loan, LoanStatus
from orders.models import OrderStatus, SalesOrder
from scf import clock, crypto
from tests.conftest import client_for
from tests.integrations.feed_helpers import event, post_signed
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.lending.loan_makers import disbursed_loan, pay_out, pending_loan
from tests.orders.factories import UserFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 10, 18, 0, tzinfo=dt.UTC)
TODAY = dt.date(2026, 3, 11)  # T0 in Asia/Shanghai
SECRET = "whsec_receiver-side-secret"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Answers each POST with the next scripted reply (an HTTP status, or ``("sleep", s)``)."""

    replies: list[Any] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    url: str = ""

    def ids(self) -> list[str]:
        return [r.headers["X-SCF-Event-Id"] for r in self.received]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            receiver.received.append(Received(dict(self.headers.items()), body))
            reply = receiver.replies.pop(0) if receiver.replies else 200
            if isinstance(reply, tuple):
                time.sleep(reply[1])
                reply = 200
            try:
                self.send_response(reply)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except BrokenPipeError:
                pass  # the client gave up waiting (the timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    state = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    state.url = f"http://{host}:{port}/scf/events"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class Clock:
    at = T0

    def advance_to(self, moment: dt.datetime) -> None:
        self.at = moment


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> Clock:
    settable = Clock()
    monkeypatch.setattr(clock, "now", lambda: settable.at)
    return settable


@pytest.fixture
def line(agent: Any, enterprise: Any) -> Any:
    return CreditLineFactory(agent=agent, program=ProgramFactory(enterprise=enterprise))


@pytest.fixture
def endpoint(enterprise: Any, receiver: Receiver) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        enterprise=enterprise, url=receiver.url, secret_encrypted=crypto.encrypt(SECRET)
    )


def types(loan: Loan | None = None) -> list[str]:
    events = OutboundEvent.objects.order_by("pk")
    if loan is not None:
        events = events.filter(payload__loan_id=str(loan.pk))
    return [e.type for e in events]


def announced(loan: Loan) -> OutboundEvent:
    """The event the sweep records for the loan's current state (one, since it is new)."""
    assert loan_events_sweep(loan_ids=[loan.pk]) == 1
    return OutboundEvent.objects.get(payload__loan_id=str(loan.pk))


def set_status(loan: Loan, status: str) -> None:
    Loan.objects.filter(pk=loan.pk).update(status=status)


def test_webhook_cancellation_after_disbursement_accelerates_and_announces_it(
    now, line, endpoint, enterprise, receiver, django_capture_on_commit_callbacks
):
    loan = disbursed_loan(line, value_date=dt.date(2026, 2, 1), due_date=dt.date(2026, 5, 4))
    assert loan_events_sweep() == 1  # the enterprise learns the loan is active
    cancel = event({"external_id": loan.order.external_id, "version": 2}, "e-1", "order.cancelled")
    with django_capture_on_commit_callbacks(execute=True):
        response = post_signed(APIClient(), enterprise, cancel)
    assert response.status_code == 200 and response.json() == {"status": "applied"}
    loan.refresh_from_db()
    assert (loan.status, loan.due_date, loan.accelerated_at) == (LoanStatus.ACTIVE, TODAY, T0)
    reviewer = client_for(UserFactory(role="risk_reviewer"))
    queue = reviewer.get("/api/v1/reviews/?kind=accelerated").json()
    assert [r["loan"]["id"] for r in queue["results"]] == [loan.pk]
    assert types() == ["loan.active", ACCELERATED]
    accelerated = OutboundEvent.objects.get(type=ACCELERATED)
    assert accelerated.payload == {
        "loan_id": str(loan.pk),
        "reference": loan.reference,
        "order_external_id": loan.order.external_id,
        "agent_code": loan.agent.code,
        "status": "active",
        "currency": "CNY",
        "principal": "8000.00",
        "outstanding_principal": "8000.00",
        "outstanding_total": "8000.00",
        "due_date": "2026-03-11",
        "days_past_due": "0",
        "accelerated_at": T0.isoformat(),
    }
    # Delivered after commit to the enterprise's endpoint.
    assert receiver.ids() == [accelerated.event_id]
    accelerated.refresh_from_db()
    assert accelerated.status == OutboundEventStatus.DELIVERED


def test_cancellation_sweep_task_accelerates_and_announces_what_the_feed_missed(
    now, line, endpoint
):
    loan = disbursed_loan(line, value_date=dt.date(2026, 2, 1), due_date=dt.date(2026, 5, 4))
    loan_events_sweep()
    SalesOrder.objects.filter(pk=loan.order_id).update(status=OrderStatus.CANCELLED)
    assert sweep_cancelled_orders() == 1
    assert Loan.objects.get(pk=loan.pk).due_date == TODAY
    assert types(loan) == ["loan.active", ACCELERATED]
    assert sweep_cancelled_orders() == 0 and loan_events_sweep() == 0


def test_each_status_change_is_announced_once(now, line, endpoint):
    loan = pending_loan(line, status=LoanStatus.APPROVED)
    steps = [
        (None, ["loan.approved"]),
        (LoanStatus.DISBURSING, []),  # still "approved" to the enterprise
        (LoanStatus.ACTIVE, ["loan.active"]),
        (LoanStatus.OVERDUE, ["loan.overdue"]),
        (LoanStatus.ACTIVE, ["loan.active"]),  # a backdated repayment cured it
        (LoanStatus.REPAID, ["loan.repaid"]),
    ]
    for status, expected in steps:
        if status is not None:
            set_status(loan, status)
        before = len(types(loan))
        assert sweep_loan_events() == len(expected)
        assert loan_events_sweep() == 0  # a second sweep finds nothing new
        assert types(loan)[before:] == expected
    payloads = OutboundEvent.objects.order_by("pk").values_list("payload__status", flat=True)
    assert list(payloads) == ["approved", "active", "overdue", "active", "repaid"]


def test_declined_failed_and_in_review_loans(now, line, endpoint):
    declined = pending_loan(line, status=LoanStatus.IN_REVIEW)
    failed = pending_loan(line, status=LoanStatus.DISBURSING)
    waiting = pending_loan(line, status=LoanStatus.IN_REVIEW)
    set_status(declined, LoanStatus.DECLINED)
    set_status(failed, LoanStatus.DISBURSEMENT_FAILED)
    assert loan_events_sweep() == 2
    assert types(declined) == ["loan.declined"]
    assert types(failed) == ["loan.disbursement_failed"]
    assert types(waiting) == []


def test_acceleration_is_announced_once_even_when_the_status_changes_later(now, line, endpoint):
    loan = disbursed_loan(line, value_date=dt.date(2026, 2, 1), due_date=TODAY, accelerated_at=T0)
    assert loan_events_sweep() == 2
    set_status(loan, LoanStatus.OVERDUE)
    assert loan_events_sweep() == 1
    assert types(loan) == ["loan.active", ACCELERATED, "loan.overdue"]


def test_no_endpoint_or_an_inactive_one_gets_no_events(now, line, endpoint):
    endpoint.active = False
    endpoint.save()
    loan = pending_loan(line, status=LoanStatus.APPROVED)
    assert loan_events_sweep(loan_ids=[loan.pk]) == 0
    endpoint.delete()
    assert loan_events_sweep() == 0
    assert OutboundEvent.objects.count() == 0


def test_event_is_dispatched_only_after_commit(
    now, line, endpoint, receiver, django_capture_on_commit_callbacks
):
    pending_loan(line, status=LoanStatus.APPROVED)
    with django_capture_on_commit_callbacks() as callbacks:
        assert loan_events_sweep() == 1
    assert receiver.received == [] and len(callbacks) == 1
    callbacks[0]()
    assert len(receiver.received) == 1
    assert OutboundEvent.objects.get().status == OutboundEventStatus.DELIVERED


def test_delivery_is_signed_with_the_endpoint_secret(now, line, endpoint, receiver):
    loan = pending_loan(line, status=LoanStatus.APPROVED)
    recorded = announced(loan)
    assert len(recorded.event_id) == 32
    assert event_deliver(event_id=recorded.event_id).outcome == "delivered"
    [request] = receiver.received
    headers = request.headers
    assert headers["X-SCF-Event-Id"] == recorded.event_id
    assert headers["X-SCF-Timestamp"] == str(int(T0.timestamp()))
    assert headers["X-SCF-Signature"] == sign(SECRET, headers["X-SCF-Timestamp"], request.body)
    assert headers["X-SCF-Signature"] != sign("another secret", T0.timestamp(), request.body)
    assert headers["Content-Type"] == "application/json"
    body = json.loads(request.body)
    assert body["event_id"] == recorded.event_id and body["type"] == "loan.approved"
    assert body["data"]["loan_id"] == str(loan.pk) and body["data"]["principal"] == "8000.00"
    recorded.refresh_from_db()
    assert (recorded.status, recorded.attempts, recorded.last_status_code) == ("delivered", 1, 200)
    assert recorded.delivered_at == T0 and recorded.next_attempt_at is None


def test_failed_delivery_is_retried_with_backoff_and_the_same_event_id(
    now, line, endpoint, receiver, settings
):
    settings.OUTBOUND_EVENT_BACKOFF_SECONDS = 10
    receiver.replies = [500, 503, 200]
    recorded = announced(pending_loan(line))
    first = event_deliver(event_id=recorded.event_id)
    recorded.refresh_from_db()
    # Attempt 1 failed: wait 10 s with equal jitter, i.e. between 5 and 10 s.
    assert first.outcome == "retry" and 5 <= first.retry_in <= 10
    assert recorded.next_attempt_at == T0 + dt.timedelta(seconds=first.retry_in)
    assert (recorded.attempts, recorded.last_status_code) == (1, 500)
    # Not due yet: neither the sweeper nor a stray task message sends it.
    assert outbound_events_due(now=T0 + dt.timedelta(seconds=4)) == []
    assert event_deliver(event_id=recorded.event_id).outcome == "skipped"
    now.advance_to(recorded.next_attempt_at)
    assert dispatch_due_events() == 1
    recorded.refresh_from_db()
    second_wait = (recorded.next_attempt_at - now.at).total_seconds()
    assert (recorded.attempts, recorded.last_status_code) == (2, 503)
    assert 10 <= second_wait <= 20  # attempt 2: 20 s with equal jitter
    now.advance_to(recorded.next_attempt_at)
    assert dispatch_due_events() == 1
    recorded.refresh_from_db()
    assert (recorded.status, recorded.attempts) == (OutboundEventStatus.DELIVERED, 3)
    assert receiver.ids() == [recorded.event_id] * 3
    assert len({r.body for r in receiver.received}) == 1  # the same body every time
    assert event_body(recorded) == receiver.received[0].body
    assert dispatch_due_events() == 0


def test_delivery_gives_up_after_the_last_attempt(now, line, endpoint, receiver, settings):
    settings.OUTBOUND_EVENT_MAX_ATTEMPTS = 2
    receiver.replies = [500, 500, 500]
    recorded = announced(pending_loan(line))
    assert event_deliver(event_id=recorded.event_id).outcome == "retry"
    recorded.refresh_from_db()
    now.advance_to(recorded.next_attempt_at)
    assert event_deliver(event_id=recorded.event_id).outcome == "failed"
    recorded.refresh_from_db()
    assert (recorded.status, recorded.attempts, recorded.next_attempt_at) == ("failed", 2, None)
    assert recorded.last_error.startswith("HTTP 500")
    now.advance_to(T0 + dt.timedelta(days=1))
    assert outbound_events_due() == [] and len(receiver.received) == 2


def test_unreachable_or_slow_receiver_counts_as_a_failed_attempt(
    now, line, endpoint, receiver, settings
):
    settings.OUTBOUND_EVENT_TIMEOUT_SECONDS = 0.2
    receiver.replies = [("sleep", 1.0)]
    slow = announced(pending_loan(line))
    assert event_deliver(event_id=slow.event_id).outcome == "retry"
    slow.refresh_from_db()
    assert "Timeout" in slow.last_error and slow.last_status_code is None
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url="http://127.0.0.1:9/closed")
    closed = announced(pending_loan(line))
    assert event_deliver(event_id=closed.event_id).outcome == "retry"
    closed.refresh_from_db()
    assert "ConnectionError" in closed.last_error


def test_delivered_event_is_never_posted_again(now, line, endpoint, receiver):
    recorded = announced(pending_loan(line))
    assert event_deliver(event_id=recorded.event_id).outcome == "delivered"
    now.advance_to(T0 + dt.timedelta(hours=1))
    assert event_deliver(event_id=recorded.event_id).outcome == "skipped"
    assert dispatch_due_events() == 0
    assert len(receiver.received) == 1


def test_backoff_doubles_within_jitter_and_is_capped(settings):
    settings.OUTBOUND_EVENT_BACKOFF_SECONDS = 30
    settings.OUTBOUND_EVENT_BACKOFF_MAX_SECONDS = 600
    for attempt, full in [(1, 30), (2, 60), (3, 120), (5, 480), (6, 600), (20, 600)]:
        waits = [backoff_seconds(attempt) for _ in range(50)]
        assert all(full / 2 <= w <= full for w in waits)
        assert len(set(waits)) > 1  # jittered


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_sweeps_record_each_change_once(line, endpoint):
    loans = [pending_loan(line, status=LoanStatus.APPROVED) for _ in range(20)]
    barrier = threading.Barrier(4)
    recorded: list[int] = []

    def sweep() -> None:
        try:
            barrier.wait(5)
            recorded.append(loan_events_sweep())
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(recorded) == [0, 0, 0, 20]
    assert sorted(types()) == ["loan.approved"] * len(loans)


def test_disbursed_then_repaid_loan_keeps_one_event_per_change(now, line, endpoint):
    loan = pending_loan(line, status=LoanStatus.DISBURSING)
    loan_events_sweep()
    pay_out(loan, value_date=TODAY, due_date=dt.date(2026, 6, 9))
    loan_events_sweep()
    loan_events_sweep(loan_ids=[loan.pk])
    assert types(loan) == ["loan.approved", "loan.active"]
