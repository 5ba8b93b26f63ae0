"""``FileBank``: the ``BankAdapter`` of a bank reached by files (see the package docstring).

``initiate_transfer`` queues the payment for the next pain.001 (idempotent on the end-to-end id:
a repeat finds the queued row) and answers *accepted*: the money moves when the bank reads the
file, and the outcome comes back in a pain.002, which the import applies to the disbursement
directly. ``transfer_status`` answers from the payment's row, so the disbursement worker's
polling and give-up logic work unchanged. ``incoming_credits`` lists the credits imported from
the bank's camt files.
"""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction

from lending.models import Bank, Disbursement
from scf import clock

from ...bank_models import OutboundPayment, PaymentKind, PaymentStatus, StatementEntry
from ..interface import (
    BankRejected,
    IncomingCredit,
    TransferReceipt,
    TransferRequest,
    TransferState,
    TransferStatus,
)

_STATES = {
    PaymentStatus.QUEUED: TransferState.ACCEPTED,
    PaymentStatus.EXPORTED: TransferState.ACCEPTED,
    PaymentStatus.SETTLED: TransferState.SETTLED,
    PaymentStatus.REJECTED: TransferState.REJECTED,
    PaymentStatus.RETURNED: TransferState.SETTLED,  # it was paid; the return is booked apart
}


def payment_queue(
    *, bank: Bank, kind: str, request: TransferRequest, remittance: str
) -> OutboundPayment:
    """The payment for ``request.end_to_end_id``, queued for the next file if new."""
    try:
        with transaction.atomic():
            return OutboundPayment.objects.create(
                bank=bank,
                kind=kind,
                end_to_end_id=request.end_to_end_id,
                amount=request.amount,
                currency=request.currency,
                debtor_account=request.debtor_account,
                creditor_name=request.creditor_name[:200],
                creditor_account=request.creditor_account,
                creditor_bank=request.creditor_bank[:200],
                remittance=remittance[:140],
                created_at=clock.now(),
            )
    except IntegrityError:
        return OutboundPayment.objects.get(end_to_end_id=request.end_to_end_id)


def _status_of(payment: OutboundPayment) -> TransferStatus:
    state = _STATES[PaymentStatus(payment.status)]
    return TransferStatus(
        end_to_end_id=payment.end_to_end_id,
        state=state,
        reason_code=payment.reason_code if state is TransferState.REJECTED else "",
        bank_reference=payment.bank_file.message_id if payment.bank_file else "",
        settled_at=payment.settled_at if state is TransferState.SETTLED else None,
    )


class FileBank:
    """A ``BankAdapter`` for one bank on the file rail."""

    def __init__(self, bank_code: str) -> None:
        self.bank_code = bank_code

    def initiate_transfer(self, request: TransferRequest) -> TransferReceipt:
        bank = Bank.objects.get(code=self.bank_code)
        reference = (
            Disbursement.objects.filter(end_to_end_id=request.end_to_end_id)
            .values_list("loan__reference", flat=True)
            .first()
        )
        payment = payment_queue(
            bank=bank,
            kind=PaymentKind.DISBURSEMENT,
            request=request,
            remittance=reference or request.remittance_info,
        )
        status = _status_of(payment)
        if status.state is TransferState.REJECTED:
            raise BankRejected(status.reason_code or "MS03")
        return TransferReceipt(
            end_to_end_id=payment.end_to_end_id,
            bank_reference=status.bank_reference,
            state=status.state,
            accepted_at=payment.created_at,
            settled_at=status.settled_at,
        )

    def transfer_status(self, end_to_end_id: str) -> TransferStatus:
        payment = (
            OutboundPayment.objects.filter(end_to_end_id=end_to_end_id)
            .select_related("bank_file")
            .first()
        )
        if payment is None:
            return TransferStatus(end_to_end_id=end_to_end_id, state=TransferState.UNKNOWN)
        return _status_of(payment)

    def incoming_credits(
        self, since: dt.datetime | None, until: dt.datetime
    ) -> list[IncomingCredit]:
        rows = StatementEntry.objects.filter(
            bank__code=self.bank_code, credit=True, bank_file__imported_at__lte=until
        )
        if since is not None:
            rows = rows.filter(bank_file__imported_at__gt=since)
        return [
            IncomingCredit(
                bank_reference=row.entry_reference,
                amount=row.amount,
                currency=row.currency,
                value_date=row.value_date or row.booking_date or until.date(),
                booked_at=row.bank_file.imported_at or until,
                debtor_name=row.debtor_name,
                remittance_info=row.remittance[:140],
            )
            for row in rows.select_related("bank_file").order_by("id")
        ]
