"""Outbound loan events: signed webhooks to a core enterprise, delivered from an outbox.

Design
------
* **Which changes become events.** Lending never imports integrations, so no lending code
  emits anything. ``loan_events_sweep`` (beat, every minute) compares each loan with the last
  event recorded for it, in one set-based query, and records an event for every difference:

  - a status event when the event type of the loan's status (``STATUS_EVENTS``: ``approved``
    and ``disbursing`` -> ``loan.approved``; ``declined``, ``active``, ``overdue``, ``repaid``,
    ``disbursement_failed`` -> ``loan.<status>``) is not the type of the loan's latest status
    event. A loan going active -> overdue -> active gets three events; a sweep that finds no
    change records nothing, so a status change is announced once however often it runs;
  - ``loan.accelerated`` once per loan, when ``accelerated_at`` is set and the loan is open.

  Events carry the loan's state at the sweep (state transfer, not a transition log): a status
  held for less than one sweep interval can be skipped (approved -> disbursing -> active within
  a minute is announced as ``loan.active``). The order feed runs the sweep for the loans a
  cancellation just changed, so the core enterprise hears of an acceleration at once.
  Two sweeps never record the same change twice: each locks the active ``WebhookEndpoint`` rows
  it works for (``FOR UPDATE``, id order) before it compares, so the second waits and then sees
  the first one's events. Only enterprises with an active endpoint get events; one that adds an
  endpoint later receives the current state of each of its loans once (``limit`` per run).
  Cost: an anti-join of the enterprises' loans with their events on ``payload->>'loan_id'``;
  an indexed ``loan_id`` column on ``OutboundEvent`` would make it cheaper at scale.
* **Outbox.** The ``OutboundEvent`` row is written in the sweep's transaction with
  ``next_attempt_at = now``; the task ``DELIVER_EVENT`` is queued after commit. A
  lost message is harmless: ``outbound_events_due`` (beat) finds pending events whose time has
  come and queues them again.
* **Delivery** (``event_deliver``): one attempt claims the event with a conditional UPDATE
  (pending and due -> ``attempts + 1``, ``next_attempt_at = now + lease``), so two copies of the
  task never post at once and the sweeper leaves an attempt in flight alone. It POSTs the JSON
  body with ``X-SCF-Event-Id``, ``X-SCF-Timestamp`` and ``X-SCF-Signature`` (the HMAC of
  ``integrations.feed.signing.sign`` with the endpoint's secret), timeout 5 s. 2xx: delivered.
  Otherwise the next attempt is due after an exponential backoff with jitter, until
  ``OUTBOUND_EVENT_MAX_ATTEMPTS`` attempts have been made: then ``failed``.
* **De-duplication by the receiver.** Delivery is at least once (a 2xx lost on the way back is
  retried). Every attempt carries the same event id and body; only the timestamp and signature
  change. The receiver keeps the event ids it has processed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import requests
from cryptography.fernet import InvalidToken
from django.conf import settings
from django.db import transaction
from django.db.models import Case, CharField, Exists, F, OuterRef, Q, QuerySet, Value, When
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from lending.models import OPEN, Loan, LoanStatus, Program
from scf import clock, crypto
from scf.enqueue import enqueue_on_commit

from .feed.signing import sign
from .models import OutboundEvent, OutboundEventStatus, WebhookEndpoint

logger = logging.getLogger(__name__)

STATUS_EVENTS: dict[str, str] = {
    LoanStatus.APPROVED: "loan.approved",
    LoanStatus.DISBURSING: "loan.approved",
    LoanStatus.DECLINED: "loan.declined",
    LoanStatus.ACTIVE: "loan.active",
    LoanStatus.OVERDUE: "loan.overdue",
    LoanStatus.REPAID: "loan.repaid",
    LoanStatus.DISBURSEMENT_FAILED: "loan.disbursement_failed",
}
STATUS_TYPES = sorted(set(STATUS_EVENTS.values()))
ACCELERATED = "loan.accelerated"
SWEEP_BATCH = 1000
DELIVER_EVENT = "integrations.deliver_event"  # the task (tasks_events.py) queued per new event
DUE_BATCH = 500
LEASE_MARGIN_SECONDS = 55.0
PENDING = OutboundEventStatus.PENDING


def _amount(value: Decimal) -> str:
    return f"{value:.2f}"


def loan_payload(loan: Loan) -> dict[str, str]:
    """What an event says about a loan; every value a string (amounts as ``"1234.50"``)."""
    owed = loan.outstanding_principal + loan.accrued_interest + loan.accrued_penalty
    return {
        "loan_id": str(loan.pk),
        "reference": loan.reference,
        "order_external_id": loan.order.external_id,
        "agent_code": loan.agent.code,
        "status": str(loan.status),
        "currency": loan.currency,
        "principal": _amount(loan.principal),
        "outstanding_principal": _amount(loan.outstanding_principal),
        "outstanding_total": _amount(owed),
        "due_date": loan.due_date.isoformat(),
        "days_past_due": str(loan.days_past_due),
        "accelerated_at": loan.accelerated_at.isoformat() if loan.accelerated_at else "",
    }


def _new_event(loan: Loan, type: str, enterprise_id: int, now: dt.datetime) -> OutboundEvent:
    return OutboundEvent(
        event_id=uuid.uuid4().hex,
        enterprise_id=enterprise_id,
        type=type,
        payload=loan_payload(loan),
        created_at=now,
        next_attempt_at=now,
    )


def events_record(events: list[OutboundEvent]) -> list[OutboundEvent]:
    """Save the events and queue their delivery after commit (a failed dispatch is logged; the
    due-events sweeper sends them later)."""
    if not events:
        return []
    OutboundEvent.objects.bulk_create(events)
    for event in events:
        enqueue_on_commit(DELIVER_EVENT, [event.event_id])
    return events


# --- the sweep: loan state changes -> events ----------------------------------------------------


def _lock_endpoints(loan_ids: list[int] | None) -> list[int]:
    """Lock the active endpoints the sweep works for (id order); their enterprises' ids."""
    endpoints = WebhookEndpoint.objects.select_for_update().filter(active=True)
    if loan_ids is not None:
        enterprises = Program.objects.filter(loans__pk__in=loan_ids).values("enterprise_id")
        endpoints = endpoints.filter(enterprise_id__in=enterprises)
    return list(endpoints.order_by("pk").values_list("enterprise_id", flat=True))


def _event_type() -> Case:
    whens = [When(status=status, then=Value(type)) for status, type in STATUS_EVENTS.items()]
    return Case(*whens, default=Value(""), output_field=CharField())


def _loans(enterprise_ids: list[int], loan_ids: list[int] | None) -> QuerySet[Loan]:
    loans = Loan.objects.filter(program__enterprise_id__in=enterprise_ids)
    if loan_ids is not None:
        loans = loans.filter(pk__in=loan_ids)
    return loans.select_related("order", "agent").annotate(
        loan_key=Cast("pk", CharField()), event_enterprise=F("program__enterprise_id")
    )


def _events_of_loan() -> QuerySet[OutboundEvent]:
    """Events of the outer loan (correlated on ``event_enterprise`` and ``loan_key``)."""
    return OutboundEvent.objects.annotate(loan_key=KT("payload__loan_id")).filter(
        enterprise_id=OuterRef("event_enterprise"), loan_key=OuterRef("loan_key")
    )


def _status_changes(loans: QuerySet[Loan]) -> QuerySet[Loan]:
    """Loans whose latest status event is not of their current status's type (or is missing)."""
    newer = OutboundEvent.objects.annotate(loan_key=KT("payload__loan_id")).filter(
        enterprise_id=OuterRef("enterprise_id"),
        loan_key=OuterRef("loan_key"),
        type__in=STATUS_TYPES,
        pk__gt=OuterRef("pk"),
    )
    latest_is_current = _events_of_loan().filter(~Exists(newer), type=OuterRef("event_type"))
    return (
        loans.filter(status__in=list(STATUS_EVENTS))
        .annotate(event_type=_event_type())
        .filter(~Exists(latest_is_current))
    )


def _accelerations(loans: QuerySet[Loan]) -> QuerySet[Loan]:
    announced = _events_of_loan().filter(type=ACCELERATED)
    return loans.filter(status__in=OPEN, accelerated_at__isnull=False).filter(~Exists(announced))


@transaction.atomic
def loan_events_sweep(*, loan_ids: Iterable[int] | None = None, limit: int = SWEEP_BATCH) -> int:
    """Record an event for every loan change not announced yet (see the module docstring);
    ``loan_ids`` narrows it to those loans. Returns how many events were recorded."""
    only = sorted(set(loan_ids)) if loan_ids is not None else None
    enterprise_ids = _lock_endpoints(only)
    if not enterprise_ids:
        return 0
    now = clock.now()
    loans = _loans(enterprise_ids, only)
    events = [
        _new_event(loan, loan.event_type, loan.event_enterprise, now)  # type: ignore[attr-defined]
        for loan in _status_changes(loans).order_by("pk")[:limit]
    ]
    events += [
        _new_event(loan, ACCELERATED, loan.event_enterprise, now)  # type: ignore[attr-defined]
        for loan in _accelerations(loans).order_by("pk")[:limit]
    ]
    return len(events_record(events))


# --- delivery -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One attempt's outcome: ``delivered``, ``retry`` (in ``retry_in`` s), ``failed`` or
    ``skipped`` (not pending, not due yet, or another attempt holds it)."""

    outcome: str
    retry_in: float | None = None


def backoff_seconds(attempt: int) -> float:
    """Wait after failed attempt ``attempt`` (1-based): base x 2^(attempt-1), capped, then
    "equal jitter" (half fixed, half random), so retries of many events spread out."""
    base = float(settings.OUTBOUND_EVENT_BACKOFF_SECONDS)
    cap = float(settings.OUTBOUND_EVENT_BACKOFF_MAX_SECONDS)
    delay = min(cap, base * 2 ** (attempt - 1))
    return delay / 2 + random.uniform(0, delay / 2)


def event_body(event: OutboundEvent) -> bytes:
    """The JSON body: the same bytes on every attempt."""
    envelope = {
        "event_id": event.event_id,
        "type": event.type,
        "created_at": event.created_at.isoformat(),
        "data": event.payload,
    }
    return json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _claim(event_id: str, now: dt.datetime) -> OutboundEvent | None:
    lease = float(settings.OUTBOUND_EVENT_TIMEOUT_SECONDS) + LEASE_MARGIN_SECONDS
    claimed = (
        OutboundEvent.objects.filter(event_id=event_id, status=PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(attempts=F("attempts") + 1, next_attempt_at=now + dt.timedelta(seconds=lease))
    )
    return OutboundEvent.objects.get(event_id=event_id) if claimed else None


def _post(event: OutboundEvent, endpoint: WebhookEndpoint) -> tuple[int | None, str]:
    """POST the signed event; (HTTP status or None, error text or "")."""
    try:
        secret = crypto.decrypt(endpoint.secret_encrypted)
    except InvalidToken:
        return None, "The endpoint's secret cannot be decrypted."
    body = event_body(event)
    timestamp = int(clock.now().timestamp())
    headers = {
        "Content-Type": "application/json",
        "X-SCF-Event-Id": event.event_id,
        "X-SCF-Event-Type": event.type,
        "X-SCF-Timestamp": str(timestamp),
        "X-SCF-Signature": sign(secret, timestamp, body),
    }
    timeout = float(settings.OUTBOUND_EVENT_TIMEOUT_SECONDS)
    try:
        response = requests.post(
            endpoint.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
        )
    except requests.RequestException as exc:
        return None, f"{type(exc).__name__}: {exc}"[:2000]
    if 200 <= response.status_code < 300:
        return response.status_code, ""
    return response.status_code, f"HTTP {response.status_code}: {response.text[:500]}"


def _settle(event: OutboundEvent, status_code: int | None, error: str) -> Delivery:
    """Record the attempt, fenced on ``attempts`` (a later claim owns the event)."""
    now = clock.now()
    mine = OutboundEvent.objects.filter(pk=event.pk, status=PENDING, attempts=event.attempts)
    if not error:
        mine.update(
            status=OutboundEventStatus.DELIVERED,
            delivered_at=now,
            next_attempt_at=None,
            last_status_code=status_code,
            last_error="",
        )
        return Delivery("delivered")
    if event.attempts >= settings.OUTBOUND_EVENT_MAX_ATTEMPTS:
        mine.update(
            status=OutboundEventStatus.FAILED,
            next_attempt_at=None,
            last_status_code=status_code,
            last_error=error,
        )
        logger.warning("outbound event failed", extra={"event_id": event.event_id})
        return Delivery("failed")
    delay = backoff_seconds(event.attempts)
    mine.update(
        next_attempt_at=now + dt.timedelta(seconds=delay),
        last_status_code=status_code,
        last_error=error,
    )
    return Delivery("retry", delay)


def event_deliver(*, event_id: str) -> Delivery:
    """Make one delivery attempt of a pending, due event (see the module docstring).

    Runs outside a transaction: the claim is visible at once and no lock is held during the
    HTTP call. A deactivated endpoint counts as a failed attempt (retried with backoff).
    """
    event = _claim(event_id, clock.now())
    if event is None:
        return Delivery("skipped")
    endpoint = WebhookEndpoint.objects.filter(
        enterprise_id=event.enterprise_id, active=True
    ).first()
    if endpoint is None:
        return _settle(event, None, "The enterprise has no active webhook endpoint.")
    status_code, error = _post(event, endpoint)
    return _settle(event, status_code, error)


def outbound_events_due(*, now: dt.datetime | None = None, limit: int = DUE_BATCH) -> list[str]:
    """Event ids to (re)dispatch: pending and due, oldest due first. Reads only."""
    now = now or clock.now()
    due = (
        OutboundEvent.objects.filter(status=PENDING)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .order_by("next_attempt_at", "pk")
        .values_list("event_id", flat=True)
    )
    return list(due[:limit])
