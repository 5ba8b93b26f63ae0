"""Every row lock the file rail takes, in one place, and the order they are taken in.

Order: payments (``OutboundPayment``, by id) -> a statement entry or an unapplied credit -> the
loan's locks (``lending.locks``, taken by the disbursement and repayment services). No service
here locks a loan before a payment or a credit, so none can wait on another in a cycle.

``SKIP LOCKED`` where a second worker should take other rows rather than wait: the export (a
payment already going into another exporter's file) and the matched credits (one another worker
is recording). Called inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from lending.models import Bank

from ...bank_models import (
    BankFile,
    EntryStatus,
    OutboundPayment,
    PaymentStatus,
    StatementEntry,
    UnappliedCredit,
)


def queued_payments_lock(bank: Bank, limit: int) -> list[OutboundPayment]:
    """The bank's queued payments no other exporter holds, oldest first."""
    return list(
        OutboundPayment.objects.select_for_update(skip_locked=True)
        .filter(bank=bank, status=PaymentStatus.QUEUED)
        .order_by("id")[:limit]
    )


def file_payments_lock(bank_file: BankFile) -> list[OutboundPayment]:
    """The payments a pain.001 carried (a status report about them is being applied)."""
    return list(
        OutboundPayment.objects.select_for_update().filter(bank_file=bank_file).order_by("id")
    )


def payments_lock(end_to_end_ids: Sequence[str]) -> list[OutboundPayment]:
    """The payments with these end-to-end ids (a statement's debits name them)."""
    return list(
        OutboundPayment.objects.select_for_update()
        .filter(end_to_end_id__in=list(end_to_end_ids))
        .order_by("id")
    )


def unapplied_credit_lock(credit_id: int) -> UnappliedCredit | None:
    """An unapplied credit with its entry and bank (read, not locked)."""
    return (
        UnappliedCredit.objects.select_for_update(of=("self",))
        .select_related("entry", "bank")
        .filter(pk=credit_id)
        .first()
    )


def refunded_credit_lock(payment: OutboundPayment) -> UnappliedCredit:
    """The credit a refund payment pays back."""
    return UnappliedCredit.objects.select_for_update().get(refund_payment=payment)


def matched_entry_lock(entry_id: int) -> StatementEntry | None:
    """A matched credit no other worker is recording, with its bank and target (not locked)."""
    return (
        StatementEntry.objects.select_for_update(of=("self",), skip_locked=True)
        .select_related("bank", "loan__program", "margin_account__program", "claim")
        .filter(pk=entry_id, status=EntryStatus.MATCHED)
        .first()
    )


def matched_entries_lock(bank: Bank, *, after: int, limit: int) -> list[StatementEntry]:
    """Up to ``limit`` of the bank's matched credits with ids above ``after`` that no other
    worker is recording, oldest first (a batch of ``matched``)."""
    return list(
        StatementEntry.objects.select_for_update(skip_locked=True)
        .filter(bank=bank, status=EntryStatus.MATCHED, pk__gt=after)
        .order_by("id")[:limit]
    )
