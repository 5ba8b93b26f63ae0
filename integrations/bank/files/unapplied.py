"""The unapplied-credit queue: credits the bank booked that no loan claimed, worked by operations.

An open credit is applied to a loan or refunded, once: the credit's row is locked and its status
checked (and the final UPDATE is conditional on ``open``), so two operators clicking at once
apply it once and the second gets ``unapplied_credit_not_open``.

* **apply to a loan** (same bank: the money is in that bank's account): the repayment service
  records it as of the credit's value date, with the reference ``<bank>:UC<id>``; the credit
  leaves the suspense account on the same date (Dr unapplied / Cr settlement), so the
  settlement account still nets to the one bank credit;
* **apply to a margin account** (same bank): the margin service lodges it as a deposit of the
  agent's (``margin_deposit``, reference ``<bank>:UC<id>``, the credit's value date), and the
  credit leaves the suspense account the same way;
* **refund**: a payment back to the payer's account goes in the bank's next pain.001
  (``refunding``); when it settles the credit leaves the suspense account (``refunded``); if the
  bank rejects it, or returns it after settling it (``returns``), the credit is open again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import transaction

from lending.models import Loan, MarginAccount, MarginSource, RepaymentSource
from lending.services.audit import audit_record
from lending.services.bank_cash import (
    bank_key_prefix,
    unapplied_credit_post,
    unapplied_transfer_post,
)
from lending.services.margin import margin_deposit
from lending.services.repayments import repayment_record_outcome
from scf import clock
from scf.errors import Conflict, NotFound, ValidationFailed
from scf.money import Money

from ...bank_models import (
    OutboundPayment,
    PaymentKind,
    UnappliedCredit,
    UnappliedStatus,
    UnappliedTarget,
)
from ..interface import TransferRequest
from .adapter import payment_queue
from .locks import refunded_credit_lock, unapplied_credit_lock

ACTOR = "integration:bank-files"


class UnappliedNotOpen(Conflict):
    code = "unapplied_credit_not_open"


def _locked(credit_id: int) -> UnappliedCredit:
    credit = unapplied_credit_lock(credit_id)
    if credit is None:
        raise NotFound(f"No unapplied credit {credit_id}.")
    if credit.status != UnappliedStatus.OPEN:
        raise UnappliedNotOpen(f"Unapplied credit {credit_id} is {credit.status}, not open.")
    return credit


def _resolve(credit: UnappliedCredit, actor: Any, **changes: Any) -> None:
    """The conditional UPDATE that closes an open credit (a second one finds nothing)."""
    changes.setdefault("resolved_at", clock.now())
    changes.setdefault("resolved_by", getattr(actor, "username", "") or str(actor or ACTOR))
    updated = UnappliedCredit.objects.filter(pk=credit.pk, status=UnappliedStatus.OPEN).update(
        **changes
    )
    if not updated:
        raise UnappliedNotOpen(f"Unapplied credit {credit.pk} is no longer open.")
    for name, value in changes.items():
        setattr(credit, name, value)


def _value_date(credit: UnappliedCredit) -> dt.date:
    entry = credit.entry
    return entry.value_date or entry.booking_date or clock.business_date(settings.TIME_ZONE)


def _reference(credit: UnappliedCredit) -> str:
    return f"{credit.bank.code}:UC{credit.pk}"


def _leave_suspense(credit: UnappliedCredit, day: dt.date) -> str:
    """Dr unapplied / Cr settlement: the credit has left the suspense account (the target's own
    entry debited settlement, so the account still nets to the one bank credit)."""
    return unapplied_transfer_post(
        bank_code=credit.bank.code,
        key=f"unapplied-applied:{credit.pk}",
        amount=credit.amount,
        currency=credit.currency,
        business_date=day,
    ).idempotency_key


@transaction.atomic
def unapplied_apply(
    *,
    credit_id: int,
    actor: Any,
    loan_id: int | None = None,
    margin_account_id: int | None = None,
) -> UnappliedCredit:
    """Apply an open credit to a loan or a margin account of its bank (the module docstring)."""
    credit = _locked(credit_id)
    if margin_account_id is not None:
        return _apply_to_margin(credit, actor, margin_account_id)
    loan = (
        Loan.objects.select_related("program").filter(pk=loan_id).first()
        if loan_id is not None
        else None
    )
    if loan is None or loan.program.bank_id != credit.bank_id:
        raise ValidationFailed(
            "The loan does not exist or is not at the credit's bank.",
            code="loan_not_applicable",
            fields={"loan": ["Not a loan of this credit's bank."]},
        )
    repayment, _ = repayment_record_outcome(
        loan=loan,
        amount=Money(credit.amount, credit.currency),
        value_date=_value_date(credit),
        reference=_reference(credit),
        source=RepaymentSource.BANK_STATEMENT,
        actor=actor,
    )
    transfer_key = _leave_suspense(credit, repayment.value_date)
    _resolve(
        credit,
        actor,
        status=UnappliedStatus.APPLIED,
        target=UnappliedTarget.LOAN,
        loan=loan,
        internal_keys=[transfer_key, f"repay:{repayment.reference}"],
    )
    audit_record(
        actor=actor,
        action="unapplied_credit.applied",
        obj=credit,
        after={"loan": loan.reference, "amount": str(credit.amount)},
    )
    return credit


def _apply_to_margin(credit: UnappliedCredit, actor: Any, account_id: int) -> UnappliedCredit:
    account = MarginAccount.objects.select_related("program").filter(pk=account_id).first()
    if account is None or account.program.bank_id != credit.bank_id:
        raise ValidationFailed(
            "The margin account does not exist or is not at the credit's bank.",
            code="margin_account_not_applicable",
            fields={"margin_account": ["Not a margin account of this credit's bank."]},
        )
    movement, _ = margin_deposit(
        account=account,
        amount=credit.amount,
        value_date=_value_date(credit),
        reference=_reference(credit),
        source=MarginSource.BANK_STATEMENT,
        actor=actor,
        currency=credit.currency,
    )
    keys = [_leave_suspense(credit, movement.value_date)]
    if movement.journal_entry is not None:
        keys.append(movement.journal_entry.idempotency_key)
    _resolve(
        credit,
        actor,
        status=UnappliedStatus.APPLIED,
        target=UnappliedTarget.MARGIN_ACCOUNT,
        margin_account=account,
        internal_keys=keys,
    )
    audit_record(
        actor=actor,
        action="unapplied_credit.applied",
        obj=credit,
        after={"margin_account": account.reference, "amount": str(credit.amount)},
    )
    return credit


def refund_end_to_end_id(credit: UnappliedCredit) -> str:
    attempt = OutboundPayment.objects.filter(
        kind=PaymentKind.REFUND, end_to_end_id__startswith=f"SCFR{credit.pk:010d}-"
    ).count()
    return f"SCFR{credit.pk:010d}-{attempt + 1}"


@transaction.atomic
def unapplied_refund(*, credit_id: int, actor: Any) -> UnappliedCredit:
    """Queue a refund of an open credit to the account it came from (the next pain.001)."""
    from .entries import settlement_account

    credit = _locked(credit_id)
    entry = credit.entry
    if not entry.debtor_account:
        raise ValidationFailed(
            "The bank did not say which account the credit came from: it cannot be refunded.",
            code="refund_account_unknown",
        )
    request = TransferRequest(
        end_to_end_id=refund_end_to_end_id(credit),
        amount=credit.amount,
        currency=credit.currency,
        debtor_account=settlement_account(credit.bank),
        creditor_name=entry.debtor_name or entry.debtor_account,
        creditor_account=entry.debtor_account,
    )
    payment = payment_queue(
        bank=credit.bank,
        kind=PaymentKind.REFUND,
        request=request,
        remittance=f"Refund {entry.entry_reference}",
    )
    _resolve(credit, actor, status=UnappliedStatus.REFUNDING, refund_payment=payment, target="")
    audit_record(
        actor=actor,
        action="unapplied_credit.refund_requested",
        obj=credit,
        after={"end_to_end_id": payment.end_to_end_id, "amount": str(credit.amount)},
    )
    return credit


def refund_journal_key(payment: OutboundPayment) -> str:
    credit_id = UnappliedCredit.objects.values_list("pk", flat=True).get(refund_payment=payment)
    return f"{bank_key_prefix(payment.bank.code)}unapplied-refunded:{credit_id}"


def refund_settled(payment: OutboundPayment, at: dt.datetime) -> None:
    """The refund left the account: the credit leaves the suspense account, ``refunded``."""
    credit = refunded_credit_lock(payment)
    unapplied_transfer_post(
        bank_code=payment.bank.code,
        key=f"unapplied-refunded:{credit.pk}",
        amount=credit.amount,
        currency=credit.currency,
        business_date=clock.business_date(settings.TIME_ZONE, at),
    )
    UnappliedCredit.objects.filter(pk=credit.pk, status=UnappliedStatus.REFUNDING).update(
        status=UnappliedStatus.REFUNDED, resolved_at=at
    )


def refund_returned(payment: OutboundPayment, day: dt.date, reason_code: str) -> str:
    """A settled refund came back (``returns``): the credit is in suspense again (Dr settlement
    / Cr unapplied, on the return's booking date) and ``open``. The key of that booking, or
    ``""`` when the credit is not ``refunded`` (nothing done)."""
    credit = refunded_credit_lock(payment)
    if credit.status != UnappliedStatus.REFUNDED:
        return ""
    entry = unapplied_credit_post(
        bank_code=payment.bank.code,
        key=f"unapplied-refund-returned:{credit.pk}:{payment.end_to_end_id}",
        amount=credit.amount,
        currency=credit.currency,
        business_date=day,
    )
    UnappliedCredit.objects.filter(pk=credit.pk).update(
        status=UnappliedStatus.OPEN, refund_payment=None, resolved_at=None, resolved_by=""
    )
    audit_record(
        actor=None,
        action="unapplied_credit.refund_returned",
        obj=credit,
        after={"end_to_end_id": payment.end_to_end_id, "reason_code": reason_code},
    )
    return entry.idempotency_key


def refund_rejected(payment: OutboundPayment, at: dt.datetime) -> None:
    """The bank refused the refund: the credit is open again (its money never left)."""
    UnappliedCredit.objects.filter(refund_payment=payment, status=UnappliedStatus.REFUNDING).update(
        status=UnappliedStatus.OPEN, refund_payment=None, resolved_at=None, resolved_by=""
    )
