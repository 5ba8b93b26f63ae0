"""Paying free margin back to an agent through the bank adapter (``MarginWithdrawal`` rows).

Simpler than a disbursement, and as safe: every transition is state-checked under the account's
row lock in ``lending.services.margin``, and the bank treats a repeated end-to-end id as the
same payment, so two workers sending one withdrawal pay it once. A withdrawal that was ever
sent, or attempted, is asked about (``transfer_status``) before anything is sent again; only an
``unknown`` answer leads to a (re-)send. A transient bank error leaves the row for the sweeper.
"""

from __future__ import annotations

import logging

from lending.models import MarginWithdrawal, WithdrawalStatus
from lending.selectors.programs import repayment_account
from lending.services.margin import (
    margin_withdraw_fail,
    margin_withdraw_mark_sent,
    margin_withdraw_settle,
)

from . import bank_adapter
from .interface import BankRejected, BankTransientError, TransferRequest, TransferState

logger = logging.getLogger(__name__)


def _request_for(row: MarginWithdrawal) -> TransferRequest:
    program = row.account.program
    debtor = repayment_account(program)  # the account payouts are sent from, one rule
    return TransferRequest(
        end_to_end_id=row.end_to_end_id,
        amount=row.amount,
        currency=row.currency,
        debtor_account=debtor,
        creditor_name=row.creditor_name,
        creditor_account=row.creditor_account,
        creditor_bank=row.creditor_bank,
        remittance_info=f"SCF margin withdrawal {row.account.reference}"[:140],
    )


def _apply(row: MarginWithdrawal, state: TransferState, bank_reference: str, code: str) -> str:
    if state is TransferState.SETTLED:
        margin_withdraw_settle(withdrawal_id=row.pk, bank_reference=bank_reference)
        return "settled"
    if state is TransferState.REJECTED:
        margin_withdraw_fail(withdrawal_id=row.pk, reason_code=code or "MS03")
        return "failed"
    margin_withdraw_mark_sent(withdrawal_id=row.pk, bank_reference=bank_reference)
    return "sent"


def margin_withdrawal_execute(withdrawal_id: int) -> str:
    """Send (or follow up) one withdrawal; returns what became of it."""
    row = (
        MarginWithdrawal.objects.select_related("account__program__bank")
        .filter(pk=withdrawal_id)
        .first()
    )
    if row is None or row.status not in (WithdrawalStatus.PENDING, WithdrawalStatus.SENT):
        return "final"
    adapter = bank_adapter()
    try:
        if row.status == WithdrawalStatus.SENT or row.attempts > 0:
            status = adapter.transfer_status(row.end_to_end_id)
            if status.state is not TransferState.UNKNOWN:
                return _apply(row, status.state, status.bank_reference, status.reason_code or "")
        MarginWithdrawal.objects.filter(pk=row.pk).update(attempts=row.attempts + 1)
        receipt = adapter.initiate_transfer(_request_for(row))
    except BankRejected as exc:
        margin_withdraw_fail(withdrawal_id=row.pk, reason_code=exc.reason_code, detail=exc.detail)
        return "failed"
    except BankTransientError as exc:
        logger.warning(
            "margin withdrawal not sent", extra={"withdrawal": row.pk, "error": str(exc)}
        )
        return "retry"
    return _apply(row, receipt.state, receipt.bank_reference, "")


def margin_withdrawals_due(limit: int = 500) -> list[int]:
    """Withdrawals approved but not final: the sweeper sends or follows each up."""
    rows = MarginWithdrawal.objects.filter(
        status__in=(WithdrawalStatus.PENDING, WithdrawalStatus.SENT)
    ).order_by("requested_at")
    return list(rows.values_list("pk", flat=True)[:limit])
