"""Celery tasks at the edges. Thin: take ids, call one service."""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, shared_task
from django.conf import settings

from lending.selectors.loans import disbursements_due
from lending.services.disbursement import DisbursementStateError, disbursements_hold

from .bank.disbursement import (
    DisbursementRetry,
    disbursement_execute,
    disbursement_give_up,
    disbursement_status_report,
)
from .bank.interface import TransferStatus
from .bank.margin_payout import margin_withdrawal_execute, margin_withdrawals_due
from .feed.pull import due_feed_sources, feed_source_poll

logger = logging.getLogger(__name__)


@shared_task(name="integrations.pull_order_feed")
def pull_order_feed(source_id: int) -> dict[str, object]:
    return feed_source_poll(source_id=source_id).__dict__


@shared_task(name="integrations.pull_order_feeds")
def pull_order_feeds() -> int:
    """Beat: queue a poll for every source that is due."""
    due = due_feed_sources()
    for source_id in due:
        pull_order_feed.delay(source_id)
    return len(due)


# --- Disbursement: paying approved loans out through the bank adapter -------------------------


def _pay_attempt(disbursement_id: int, retries: int) -> tuple[str, float | None]:
    """One attempt to pay a disbursement out: its outcome, and when to ask the bank again
    about an accepted transfer (None: never). Raises ``DisbursementRetry`` on a transient error
    while retries are left; after ``DISBURSEMENT_MAX_RETRIES`` it gives up instead."""
    try:
        execution = disbursement_execute(disbursement_id)
    except DisbursementRetry as exc:
        if retries >= settings.DISBURSEMENT_MAX_RETRIES:
            return disbursement_give_up(disbursement_id, detail=str(exc)).value, None
        raise
    return execution.outcome.value, execution.poll_in


@shared_task(bind=True, name="integrations.disburse_loan", acks_late=True)
def disburse_loan(self: Task, disbursement_id: int) -> str:
    """Pay one disbursement out. Safe to run twice or concurrently (lease, state checks, the
    bank's idempotency on the end-to-end id). Transient bank errors are retried with exponential
    backoff and jitter, up to ``DISBURSEMENT_MAX_RETRIES``; then ``disbursement_give_up``. An
    accepted transfer is asked about again later (the sweeper covers a lost follow-up).
    """
    try:
        outcome, poll_in = _pay_attempt(disbursement_id, self.request.retries)
    except DisbursementRetry as exc:
        max_retries = settings.DISBURSEMENT_MAX_RETRIES
        raise self.retry(exc=exc, countdown=exc.retry_in, max_retries=max_retries) from exc
    if poll_in is not None and not self.request.is_eager:
        self.apply_async(args=[disbursement_id], countdown=poll_in)
    return outcome


@shared_task(name="integrations.disburse_loans", acks_late=True)
def disburse_loans(disbursement_ids: list[int]) -> list[str]:
    """Pay out a batch the web processes' relay queued (``payout_relay``), one after another:
    each exactly as ``disburse_loan``'s first attempt. A transient error or an accepted
    transfer hands that one disbursement to ``disburse_loan`` (its backoff, its follow-up); the
    rest of the batch goes on. Redelivered after a worker died, every payment is safe to run
    again."""
    outcomes = []
    for disbursement_id in disbursement_ids:
        try:
            outcome, poll_in = _pay_attempt(disbursement_id, 0)
        except DisbursementRetry as exc:
            disburse_loan.apply_async(args=[disbursement_id], countdown=exc.retry_in, retries=1)
            outcomes.append("retrying")
            continue
        if poll_in is not None:
            disburse_loan.apply_async(args=[disbursement_id], countdown=poll_in)
        outcomes.append(outcome)
    return outcomes


@shared_task(name="integrations.disbursement_sweeper")
def disbursement_sweeper(min_age_seconds: float | None = None) -> int:
    """Beat: re-dispatch every disbursement not settled or failed whose lease is free and whose
    retry time has come (a lost message, a flushed broker, a killed worker). Duplicates of a
    message still in flight are harmless. What it sends is held out of the next sweeps for
    ``DISBURSEMENT_SWEEP_HOLD_SECONDS`` (default: the minimum age), so a backlog is not sent
    again at every sweep."""
    if min_age_seconds is None:
        min_age_seconds = float(settings.DISBURSEMENT_SWEEP_MIN_AGE_SECONDS)
    due = disbursements_due(
        min_age_seconds=min_age_seconds,
        limit=settings.DISBURSEMENT_SWEEP_BATCH,
    )
    hold = float(settings.DISBURSEMENT_SWEEP_HOLD_SECONDS)
    disbursements_hold(ids=due, seconds=hold)
    for disbursement_id in due:
        disburse_loan.delay(disbursement_id)
    return len(due)


@shared_task(name="integrations.bank_status_report", acks_late=True)
def bank_status_report(report: dict[str, Any]) -> str:
    """A status report pushed by the bank (possibly a duplicate): apply it idempotently."""
    status = TransferStatus.from_json(report)
    try:
        return disbursement_status_report(status).value
    except DisbursementStateError:
        logger.exception("bank status report contradicts our books: %s", report)
        return "conflict"


from . import (  # noqa: E402
    tasks_bankfiles,  # noqa: F401 - registers the bank-file tasks
    tasks_events,  # noqa: F401 - registers event, reminder and cancellation tasks
)

# --- Margin withdrawals: free margin paid back to agents ----------------------------------------


@shared_task(name="integrations.margin_withdrawal_send", acks_late=True)
def margin_withdrawal_send(withdrawal_id: int) -> str:
    """Send or follow up one approved margin withdrawal (safe to run twice)."""
    return margin_withdrawal_execute(withdrawal_id)


@shared_task(name="integrations.margin_withdrawal_sweeper")
def margin_withdrawal_sweeper() -> int:
    """Beat: send or follow up every approved withdrawal that is not final yet."""
    due = margin_withdrawals_due()
    for withdrawal_id in due:
        margin_withdrawal_execute(withdrawal_id)
    return len(due)
