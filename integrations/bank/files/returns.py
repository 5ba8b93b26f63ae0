"""A payment of ours that came back: a camt credit with ``RvslInd`` (or a return reason,
``RtrInf``) naming the end-to-end id of a payment we sent and the bank settled.

The money is back in the account, so the book must say why:

* a **disbursement**: the core enterprise was not paid, so the loan must not stand as paid out.
  ``lending.services.disbursement_return`` undoes it when nothing but accrual happened on the
  loan (accruals reversed, the disbursement entry reversed on the return's booking date, the
  loan ``disbursement_failed``, its credit line restored, a review case and an audit row with
  the ISO return reason); the entry is ``returned`` and reconciles against that reversal
  (``disburse-return:<loan>``). When the loan cannot be undone by a rule (repayments, a claim,
  tripartite margin paid out with it), a case opens and the money goes to the unapplied-credit
  queue naming the loan, for a person to decide;
* a **refund** of an unapplied credit: the credit is back in suspense and ``open`` again
  (``unapplied.refund_returned``); the entry reconciles against that booking.

The payment becomes ``returned``. Once only: the entry is stored once (its ``AcctSvcrRef``),
and a second return of a payment already ``returned`` (or of one that never settled, or for
another amount) is not ours to act on: it goes to the unapplied queue with the reason. Anything
that is not a single-payment return of ours is an unapplied credit too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from lending.models import Bank, Disbursement, Loan
from lending.services.disbursement_return import ReturnOutcome, disbursement_return
from scf import clock

from ...bank_models import OutboundPayment, PaymentKind, PaymentStatus
from ..iso20022 import Entry
from .locks import payments_lock
from .unapplied import refund_returned


@dataclass
class ReturnResult:
    returned: bool = False  # applied: the entry is ``returned`` and booked by ``journal_keys``
    reason: str = ""  # else: why it goes to the unapplied queue
    journal_keys: list[str] = field(default_factory=list)
    loan: Loan | None = None


def is_return(entry: Entry) -> bool:
    return entry.reversal or any(d.return_reason for d in entry.details)


def _returned(payment: OutboundPayment, code: str) -> None:
    payment.status = PaymentStatus.RETURNED
    payment.reason_code = code[:16]
    payment.save(update_fields=["status", "reason_code"])


def _ours(entry: Entry, bank: Bank, label: str) -> OutboundPayment | str:
    """The settled payment of ours the entry returns, else why it is not one."""
    e2e = entry.details[0].end_to_end_id if len(entry.details) == 1 else ""
    found = payments_lock([e2e]) if e2e else []
    payment = found[0] if found else None
    if payment is None or payment.bank_id != bank.pk:
        return label
    if payment.status != PaymentStatus.SETTLED:
        return f"{label}: our payment is {payment.status}"
    if (payment.amount, payment.currency) != (entry.amount, entry.currency):
        return f"{label}: {entry.amount} {entry.currency} is not the payment's {payment.amount}"
    return payment


def return_apply(entry: Entry, bank: Bank) -> ReturnResult:
    """Apply a returned payment (inside the import's savepoint; see the module docstring)."""
    detail = entry.details[0] if entry.details else None
    e2e = detail.end_to_end_id if detail else ""
    code = detail.return_reason if detail else ""
    label = f"returned payment {e2e or '(no end-to-end id)'} ({code or 'no reason given'})"
    payment = _ours(entry, bank, label)
    if isinstance(payment, str):
        return ReturnResult(reason=payment)
    day = entry.booking_date or clock.business_date(settings.TIME_ZONE)
    if payment.kind == PaymentKind.REFUND:
        key = refund_returned(payment, day, code)
        if not key:
            return ReturnResult(reason=f"{label}: its credit is not refunded")
        _returned(payment, code)
        return ReturnResult(returned=True, journal_keys=[key])
    disbursement_id = Disbursement.objects.values_list("pk", flat=True).get(end_to_end_id=e2e)
    result = disbursement_return(
        disbursement_id=disbursement_id,
        reason_code=code,
        detail=f"bank entry {entry.account_servicer_reference}",
        business_date=day,
    )
    _returned(payment, code)
    if result.outcome is ReturnOutcome.REVIEW:
        reason = f"{label}: loan {result.loan.reference} sent to review"
        return ReturnResult(reason=reason, loan=result.loan)
    return ReturnResult(returned=True, journal_keys=[result.journal_key], loan=result.loan)
