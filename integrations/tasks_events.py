"""Celery tasks for loan events, reminders and cancelled orders. Thin: take ids, call a service.

Kept apart from ``tasks.py`` (money movement); ``tasks.py`` imports this module so that Celery's
autodiscovery registers these tasks too.
"""

from __future__ import annotations

import datetime as dt

from celery import Task, shared_task

from lending.services.acceleration import cancelled_orders_sweep

from .bank.statements import statement_import
from .events import DELIVER_EVENT, event_deliver, loan_events_sweep, outbound_events_due
from .notifications import notifications_send_due
from .tripartite.events import tripartite_events_sweep


@shared_task(bind=True, name=DELIVER_EVENT, acks_late=True)
def deliver_event(self: Task, event_id: str) -> str:
    """One delivery attempt of an outbound event; on failure, the next one is queued after the
    backoff the attempt recorded (the due-events sweeper re-sends it if this message is lost).
    In eager mode the retry is left to the sweeper."""
    delivery = event_deliver(event_id=event_id)
    if delivery.retry_in is not None and not self.request.is_eager:
        self.apply_async(args=[event_id], countdown=delivery.retry_in)
    return delivery.outcome


@shared_task(name="integrations.dispatch_due_events")
def dispatch_due_events() -> int:
    """Beat: queue a delivery for every pending event whose next attempt is due."""
    due = outbound_events_due()
    for event_id in due:
        deliver_event.delay(event_id)
    return len(due)


@shared_task(name="integrations.sweep_loan_events")
def sweep_loan_events() -> int:
    """Beat: record (and queue) events for loan status changes not announced yet, and the
    tripartite agreement's (goods releasable, claims raised)."""
    return loan_events_sweep() + tripartite_events_sweep()


@shared_task(name="integrations.send_reminders")
def send_reminders(today: str | None = None) -> int:
    """Beat (daily): send the repayment reminders due ``today`` (ISO date; default: now)."""
    return notifications_send_due(today=dt.date.fromisoformat(today) if today else None)


@shared_task(name="integrations.sweep_cancelled_orders")
def sweep_cancelled_orders() -> int:
    """Beat: apply order cancellations to their loans where the feed's follow-up was lost,
    then announce what changed."""
    results = cancelled_orders_sweep()
    if results:
        loan_events_sweep(loan_ids=[r.loan_id for r in results])
    return len(results)


@shared_task(name="integrations.import_bank_statement")
def import_bank_statement() -> dict[str, int]:
    """Beat: turn the bank's incoming credits into repayments (idempotent by bank reference);
    the goods they make releasable are announced at once."""
    result = statement_import()
    if result.applied:
        tripartite_events_sweep()
    return result.__dict__
