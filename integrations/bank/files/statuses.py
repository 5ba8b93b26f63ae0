"""A pain.002 status report, applied to the payments of the pain.001 it answers.

Each payment's final status (its transaction's own, else its block's, else the group's: a
group ``RJCT`` without transactions rejects the whole file) is applied once: settled (``ACSC``,
``ACCC``) settles the payment and, for a disbursement, the loan (``disbursement_settle``);
rejected (``RJCT`` and its reason code) fails it (``disbursement_fail``: the credit is released)
or, for a refund, puts the credit back in the unapplied queue. Accepted-not-yet-settled statuses
change nothing. A repeat of a final status is a no-op; a status contradicting a final one, or
naming a payment the file did not carry, refuses the whole report (``FileRefused``).
"""

from __future__ import annotations

import datetime as dt

from lending.models import Bank, Disbursement
from lending.services.disbursement import disbursement_fail, disbursement_settle
from scf.errors import ApplicationError

from ...bank_models import (
    BankFile,
    BankFileDirection,
    BankFileKind,
    OutboundPayment,
    PaymentKind,
    PaymentStatus,
)
from ..interface import TransferState
from ..iso20022 import PaymentStatus as IsoStatus
from ..iso20022 import PaymentStatusReport, parse_pain002
from .errors import FileRefused
from .locks import file_payments_lock
from .unapplied import refund_rejected, refund_settled

FINAL = (PaymentStatus.SETTLED, PaymentStatus.REJECTED)


def _final_statuses(
    report: PaymentStatusReport, payments: dict[str, OutboundPayment]
) -> dict[str, tuple[TransferState, str]]:
    """End-to-end id -> (settled or rejected, reason code), for every payment decided."""
    decided: dict[str, tuple[TransferState, str]] = {}
    for tx in report.transactions:
        if tx.end_to_end_id not in payments:
            raise FileRefused(
                "unknown_payment", f"{tx.end_to_end_id} was not in {report.original_message_id}"
            )
        state = tx.status.transfer_state
        if state is not TransferState.ACCEPTED:
            decided[tx.end_to_end_id] = (state, tx.reason_code)
    group = report.group_status
    if group is IsoStatus.RJCT and not report.transactions:
        code = report.group_reasons[0].code if report.group_reasons else ""
        decided = {e2e: (TransferState.REJECTED, code) for e2e in payments}
    elif group in (IsoStatus.ACSC, IsoStatus.ACCC) and not report.transactions:
        decided = {e2e: (TransferState.SETTLED, "") for e2e in payments}
    return decided


def apply_final(
    payment: OutboundPayment, state: TransferState, reason: str, at: dt.datetime, ref: str
) -> None:
    wanted = PaymentStatus.SETTLED if state is TransferState.SETTLED else PaymentStatus.REJECTED
    if payment.status == PaymentStatus.RETURNED and wanted == PaymentStatus.SETTLED:
        return  # a late status report of a payment that settled and came back since
    if payment.status in FINAL:
        if payment.status != wanted:
            raise FileRefused(
                "state_conflict", f"{payment.end_to_end_id} is {payment.status}, report: {wanted}"
            )
        return
    payment.status = wanted
    payment.reason_code = reason[:16]
    payment.settled_at = at if wanted == PaymentStatus.SETTLED else None
    payment.save(update_fields=["status", "reason_code", "settled_at"])
    if payment.kind == PaymentKind.REFUND:
        (refund_settled if wanted == PaymentStatus.SETTLED else refund_rejected)(payment, at)
        return
    disbursement_id = Disbursement.objects.values_list("pk", flat=True).get(
        end_to_end_id=payment.end_to_end_id
    )
    if wanted == PaymentStatus.SETTLED:
        disbursement_settle(disbursement_id=disbursement_id, bank_reference=ref, settled_at=at)
    else:
        code = reason or "MS03"
        disbursement_fail(disbursement_id=disbursement_id, reason_code=code, detail=code)


def pain002_apply(row: BankFile, content: bytes, bank: Bank, *, max_bytes: int) -> None:
    """Apply a status report (inside the import's savepoint; see the module docstring)."""
    report = parse_pain002(content, max_bytes=max_bytes)
    row.message_id = report.message_id[:35]
    original = BankFile.objects.filter(
        bank=bank,
        direction=BankFileDirection.OUTBOUND,
        kind=BankFileKind.PAIN_001,
        message_id=report.original_message_id,
    ).first()
    if original is None:
        raise FileRefused(
            "unknown_original", f"no payment file {report.original_message_id} was sent"
        )
    payments = {p.end_to_end_id: p for p in file_payments_lock(original)}
    decided = _final_statuses(report, payments)
    row.transactions = len(decided)
    settled_at = report.created_at
    if settled_at.tzinfo is None:
        settled_at = settled_at.replace(tzinfo=dt.UTC)
    try:
        for e2e, (state, reason) in sorted(decided.items()):
            apply_final(payments[e2e], state, reason, settled_at, report.message_id)
    except ApplicationError as exc:
        raise FileRefused("state_conflict", str(exc)) from exc
