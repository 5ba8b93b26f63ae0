"""Paying loans out through the bank adapter: the bank calls around ``lending`` transitions.

``disbursement_execute`` works one disbursement under its lease:

1. take the lease (a conditional UPDATE; none -> someone else has it, or it is final: stop);
2. if it was ever sent, or a previous attempt may have died mid-call (``attempts > 1``), ask
   the bank first (``transfer_status``). Only an ``unknown`` answer leads to a (re-)send:
   never a blind re-send;
3. otherwise initiate the transfer with its end-to-end id;
4. act on the answer: settled -> ``disbursement_settle``; accepted -> ``disbursement_mark_sent``
   and a poll later; rejected -> ``disbursement_fail``; a ``BankTimeout`` on initiate marks the
   row ``sent`` (the bank may have it) and, like ``BankUnavailable``, gives the lease back and
   raises ``DisbursementRetry`` for the task to retry with backoff.

``disbursement_status_report`` applies a status report the bank pushes (or pushes twice); it
takes no lease, since every transition is state-checked under row locks. ``disbursement_give_up``
runs when retries are exhausted: it fails the disbursement only if the bank says it never
received it; if the bank cannot even be asked, the row stays for the sweeper.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings

from lending.models import Disbursement, DisbursementStatus
from lending.selectors.programs import repayment_account
from lending.services.disbursement import (
    disbursement_fail,
    disbursement_lease,
    disbursement_mark_sent,
    disbursement_release,
    disbursement_settle,
)
from scf import clock

from . import bank_adapter_for
from .interface import (
    BankAdapter,
    BankRejected,
    BankTimeout,
    BankTransientError,
    TransferRequest,
    TransferState,
    TransferStatus,
)

logger = logging.getLogger(__name__)

# Our own reason code (the bank's codes are 4 letters) for "retries exhausted, bank never had it".
BANK_UNREACHABLE = "bank_unreachable"


def lease_seconds() -> float:
    """How long one attempt may hold a disbursement: well above a bank call's timeout."""
    return float(settings.DISBURSEMENT_LEASE_SECONDS)


def retry_delay(attempt: int) -> float:
    """Exponential backoff with equal jitter: half the step fixed, half random."""
    base = float(settings.DISBURSEMENT_RETRY_BACKOFF_SECONDS)
    step = min(float(settings.DISBURSEMENT_RETRY_BACKOFF_MAX_SECONDS), base * 2 ** max(attempt, 0))
    return step / 2 + random.uniform(0, step / 2)


def poll_delay(attempt: int) -> float:
    """When to ask again about an accepted transfer: doubling from the base, capped."""
    base = float(settings.DISBURSEMENT_POLL_SECONDS)
    return min(float(settings.DISBURSEMENT_POLL_MAX_SECONDS), base * 2 ** max(attempt - 1, 0))


class Outcome(StrEnum):
    SETTLED = "settled"
    FAILED = "failed"
    AWAITING_SETTLEMENT = "awaiting_settlement"  # the bank has it; ask again later
    BUSY = "busy"  # leased by another worker, or already final: nothing done
    UNRESOLVED = "unresolved"  # could not even ask the bank; the sweeper comes back
    IGNORED = "ignored"  # a status report about nothing we know, or saying nothing


@dataclass(frozen=True)
class Execution:
    outcome: Outcome
    poll_in: float | None = None  # seconds until the next status query, when awaiting


class DisbursementRetry(Exception):
    """A transient bank error; retry in ``retry_in`` seconds (the lease has been given back)."""

    def __init__(self, disbursement_id: int, retry_in: float, cause: BankTransientError) -> None:
        super().__init__(f"disbursement {disbursement_id}: {type(cause).__name__}: {cause}")
        self.disbursement_id = disbursement_id
        self.retry_in = retry_in


def _request_for(disbursement: Disbursement) -> TransferRequest:
    loan = disbursement.loan
    debtor = repayment_account(loan.program)
    return TransferRequest(
        end_to_end_id=disbursement.end_to_end_id,
        amount=disbursement.amount,
        currency=disbursement.currency,
        debtor_account=debtor,
        creditor_name=disbursement.creditor_name,
        creditor_account=disbursement.creditor_account,
        creditor_bank=disbursement.creditor_bank,
        remittance_info=f"SCF loan {loan.reference} order {loan.order.external_id}"[:140],
    )


def _record_status(disbursement_id: int, status: TransferStatus) -> Outcome:
    """Apply what the bank says; each transition is idempotent and state-checked."""
    if status.state is TransferState.SETTLED:
        disbursement_settle(
            disbursement_id=disbursement_id,
            bank_reference=status.bank_reference,
            settled_at=status.settled_at or clock.now(),
        )
        return Outcome.SETTLED
    if status.state is TransferState.REJECTED:
        code = status.reason_code or "MS03"
        disbursement_fail(disbursement_id=disbursement_id, reason_code=code, detail=code)
        return Outcome.FAILED
    if status.state is TransferState.ACCEPTED:
        disbursement_mark_sent(
            disbursement_id=disbursement_id, bank_reference=status.bank_reference
        )
        return Outcome.AWAITING_SETTLEMENT
    return Outcome.IGNORED


def _apply(disbursement: Disbursement, status: TransferStatus) -> Execution:
    """Apply the answer; an accepted transfer gets its lease back with a time to ask again."""
    outcome = _record_status(disbursement.pk, status)
    if outcome is not Outcome.AWAITING_SETTLEMENT:
        return Execution(outcome)
    poll_in = poll_delay(disbursement.attempts)
    disbursement_release(
        disbursement_id=disbursement.pk,
        lease_until=disbursement.lease_until,
        next_attempt_at=clock.now() + dt.timedelta(seconds=poll_in),
    )
    return Execution(outcome, poll_in)


def _receipt_status(bank: BankAdapter, disbursement: Disbursement) -> TransferStatus:
    """Send the transfer; a timeout marks it sent (the bank may have it) and propagates."""
    try:
        receipt = bank.initiate_transfer(_request_for(disbursement))
    except BankTimeout:
        disbursement_mark_sent(disbursement_id=disbursement.pk)
        raise
    return TransferStatus(
        end_to_end_id=receipt.end_to_end_id,
        state=receipt.state,
        bank_reference=receipt.bank_reference,
        settled_at=receipt.settled_at,
    )


def _work(bank: BankAdapter, disbursement: Disbursement) -> Execution:
    uncertain = disbursement.status == DisbursementStatus.SENT or disbursement.attempts > 1
    if uncertain:
        status = bank.transfer_status(disbursement.end_to_end_id)
        if status.state is not TransferState.UNKNOWN:
            return _apply(disbursement, status)
    return _apply(disbursement, _receipt_status(bank, disbursement))


def _release_after_error(disbursement: Disbursement, error: Exception, delay: float) -> None:
    disbursement_release(
        disbursement_id=disbursement.pk,
        lease_until=disbursement.lease_until,
        next_attempt_at=clock.now() + dt.timedelta(seconds=delay),
        error=f"{type(error).__name__}: {error}",
    )


def disbursement_execute(disbursement_id: int, *, bank: BankAdapter | None = None) -> Execution:
    """One attempt at paying a disbursement out, under its lease (see the module docstring).

    Raises ``DisbursementRetry`` on a transient bank error. Bank calls are made outside any
    transaction; each state change is its own short transaction in ``lending``.
    """
    disbursement = disbursement_lease(disbursement_id=disbursement_id, seconds=lease_seconds())
    if disbursement is None:
        return Execution(Outcome.BUSY)
    try:
        return _work(bank or bank_adapter_for(disbursement.loan.program.bank.code), disbursement)
    except BankRejected as exc:
        disbursement_fail(
            disbursement_id=disbursement_id, reason_code=exc.reason_code, detail=exc.detail
        )
        return Execution(Outcome.FAILED)
    except BankTransientError as exc:
        delay = retry_delay(disbursement.attempts - 1)
        _release_after_error(disbursement, exc, delay)
        raise DisbursementRetry(disbursement_id, delay, exc) from exc
    except Exception as exc:
        # Unexpected (a bug, the database): free the row for the sweeper, then fail loudly.
        _release_after_error(disbursement, exc, float(settings.DISBURSEMENT_POLL_MAX_SECONDS))
        raise


def disbursement_give_up(
    disbursement_id: int, *, detail: str, bank: BankAdapter | None = None
) -> Outcome:
    """Retries are exhausted. Fail the disbursement only if the bank says it never received it
    (no money can have moved); apply whatever else it says; if it cannot be asked, leave the
    row (lease given back) for the sweeper. Works under the lease like an attempt.
    """
    disbursement = disbursement_lease(disbursement_id=disbursement_id, seconds=lease_seconds())
    if disbursement is None:
        return Outcome.BUSY
    try:
        adapter = bank or bank_adapter_for(disbursement.loan.program.bank.code)
        status = adapter.transfer_status(disbursement.end_to_end_id)
    except BankTransientError as exc:
        _release_after_error(disbursement, exc, float(settings.DISBURSEMENT_POLL_MAX_SECONDS))
        return Outcome.UNRESOLVED
    if status.state is TransferState.UNKNOWN:
        disbursement_fail(
            disbursement_id=disbursement_id, reason_code=BANK_UNREACHABLE, detail=detail
        )
        return Outcome.FAILED
    return _apply(disbursement, status).outcome


def disbursement_status_report(status: TransferStatus) -> Outcome:
    """A status report the bank pushed (possibly the same one twice): apply it, idempotently."""
    disbursement_id = (
        Disbursement.objects.filter(end_to_end_id=status.end_to_end_id)
        .values_list("pk", flat=True)
        .first()
    )
    if disbursement_id is None:
        logger.warning("bank status report for unknown end-to-end id %s", status.end_to_end_id)
        return Outcome.IGNORED
    return _record_status(disbursement_id, status)
