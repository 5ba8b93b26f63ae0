"""Repayments: money received against a loan, allocated by the waterfall, value-dated.

Design
------
* **The entry point** ``repayment_record`` validates (amount: positive, at most two places, at
  most 10^15, the loan's currency; value date: not in the program's future, not before the
  loan's value date; reference), takes the locks, and applies the payment
  (``lending.services.repayment_apply``): by the waterfall (penalty, interest, principal,
  overpayment, ``lending.services.waterfall``) on time, or backdated and replayed.
* **Value dates.** A payment value-dated D counts before the night of D (see
  ``lending.services.accrual``). If the loan has not been accrued up to D - 1 yet, it is first
  (``loan_accrue_through``), so the payment meets the balances as they stood on D; if it has been
  accrued past D - 1, the payment is backdated.
* **Exactly once.** ``reference`` is unique on ``Repayment``. A repeat with the same loan,
  amount and value date returns the first repayment and changes nothing; a repeat that differs
  is refused (``repayment_reference_reused``). Concurrent repeats: the second waits on the loan
  lock (same loan) or on the unique index (another loan), then sees the first.
* **Locking.** The program's advisory lock in shared mode (COB takes it exclusively), then the
  loan, its credit line and its program, in that order, all before the state is read.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from scf import clock
from scf.errors import Conflict, ValidationFailed
from scf.money import MONEY_PLACES, Money

from ..locks import loan_lock
from ..models import OPEN, GuaranteeClaim, Loan, LoanStatus, Repayment
from .accrual_loan import loan_accrue_through
from .audit import audit_record
from .ledger import LedgerKeyReused
from .repayment_apply import (
    RepaymentRequest,
    repayment_apply_backdated,
    repayment_apply_on_time,
)
from .waterfall import Allocation, allocate

__all__ = [
    "Allocation",
    "LoanNotRepayable",
    "RepaymentBeforeClaim",
    "RepaymentCurrencyMismatch",
    "RepaymentInvalid",
    "RepaymentReferenceReused",
    "allocate",
    "loan_for_reference",
    "loan_lock",
    "repayment_record",
    "repayment_record_outcome",
]

MAX_REPAYMENT = Decimal(10) ** 15
REFERENCE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/\-]{0,63}")
REPAYABLE = (*OPEN, LoanStatus.REPAID)
RECORDED = "repayment_recorded"  # the audit action


class RepaymentInvalid(ValidationFailed):
    """A field of the repayment is wrong; ``fields`` says which (422 ``validation_error``)."""


class RepaymentCurrencyMismatch(ValidationFailed):
    code = "currency_mismatch"


class RepaymentReferenceReused(Conflict):
    code = "repayment_reference_reused"


class LoanNotRepayable(Conflict):
    code = "loan_not_repayable"


# --- validation ---------------------------------------------------------------------------------


def _clean_amount(amount: Money | Decimal, loan: Loan) -> Decimal:
    value = amount.amount if isinstance(amount, Money) else amount
    if isinstance(amount, Money) and amount.currency != loan.currency:
        raise RepaymentCurrencyMismatch(
            f"The loan is in {loan.currency}, not {amount.currency}.",
            fields={"currency": [f"Must be {loan.currency}, the loan's currency."]},
        )
    problem = ""
    if not isinstance(value, Decimal) or not value.is_finite():
        problem = "Must be a finite decimal amount."
    elif value <= 0:
        problem = "Must be greater than zero."
    elif value > MAX_REPAYMENT:
        problem = f"Must be at most {MAX_REPAYMENT:,}."
    elif value != value.quantize(Decimal(1).scaleb(-MONEY_PLACES)):
        problem = "At most two decimal places."
    if problem:
        raise RepaymentInvalid(f"Invalid amount: {problem}", fields={"amount": [problem]})
    return value.quantize(Decimal("0.01"))


def _clean_reference(reference: str) -> str:
    cleaned = reference.strip() if isinstance(reference, str) else ""
    if not REFERENCE_PATTERN.fullmatch(cleaned):
        message = (
            "1 to 64 characters: letters, digits and . _ : / - (starting with a letter or digit)."
        )
        raise RepaymentInvalid(f"Invalid reference. {message}", fields={"reference": [message]})
    return cleaned


def _check_value_date(loan: Loan, value_date: dt.date, today: dt.date) -> None:
    problem = ""
    if not isinstance(value_date, dt.date) or isinstance(value_date, dt.datetime):
        problem = "Must be a date."
    elif value_date > today:
        problem = f"Must not be in the future (today is {today} in {loan.program.time_zone})."
    elif loan.value_date is not None and value_date < loan.value_date:
        problem = f"Must not be before the loan's value date {loan.value_date}."
    if problem:
        raise RepaymentInvalid(f"Invalid value date: {problem}", fields={"value_date": [problem]})


def _check_repayable(loan: Loan) -> None:
    if loan.status not in REPAYABLE or loan.value_date is None:
        raise LoanNotRepayable(
            f"Loan {loan.reference} is {loan.status}: it cannot take repayments."
        )


class RepaymentBeforeClaim(Conflict):
    code = "repayment_before_claim"


def _check_after_claim(loan: Loan, value_date: dt.date) -> None:
    """A backdated payment is replayed from its value date on the loan's own history, which does
    not hold the guarantee claim's (and security deposit's) night: one value-dated on or before
    that night would undo them. It is refused; the bank books it on a later date."""
    if loan.accrued_through is None or value_date > loan.accrued_through:
        return
    night = GuaranteeClaim.objects.filter(loan=loan).values_list("raised_on", flat=True).first()
    if night is not None and value_date <= night:
        raise RepaymentBeforeClaim(
            f"Loan {loan.reference} had a guarantee claim raised on {night}: a repayment cannot "
            "be value-dated on or before it.",
            fields={"value_date": [f"Must be after {night}."]},
        )


def _existing(reference: str, loan: Loan, amount: Decimal, value_date: dt.date) -> Repayment | None:
    found = Repayment.objects.filter(reference=reference).first()
    if found is None:
        return None
    if (found.loan_id, found.amount, found.value_date) != (loan.pk, amount, value_date):
        raise RepaymentReferenceReused(
            f"Reference {reference!r} was already used for another repayment.",
            fields={"reference": ["Already used for a different repayment."]},
        )
    return found


# --- the service --------------------------------------------------------------------------------


def loan_for_reference(reference: str) -> Loan | None:
    """The loan an agent's payment reference names (as printed on its schedule), if any."""
    cleaned = reference.strip() if isinstance(reference, str) else ""
    if not cleaned:
        return None
    return Loan.objects.filter(reference__iexact=cleaned).select_related("program").first()


def repayment_record(
    *,
    loan: Loan,
    amount: Money | Decimal,
    value_date: dt.date,
    reference: str,
    source: str,
    actor: Any,
    today: dt.date | None = None,
) -> Repayment:
    """Record and apply a repayment (see the module docstring); the existing one on a repeat."""
    repayment, _ = repayment_record_outcome(
        loan=loan,
        amount=amount,
        value_date=value_date,
        reference=reference,
        source=source,
        actor=actor,
        today=today,
    )
    return repayment


def repayment_record_outcome(
    *,
    loan: Loan,
    amount: Money | Decimal,
    value_date: dt.date,
    reference: str,
    source: str,
    actor: Any,
    today: dt.date | None = None,
) -> tuple[Repayment, bool]:
    """``repayment_record``, also saying whether this call created the repayment.

    Validation errors are raised before anything is written: ``RepaymentInvalid`` (amount,
    reference, value date), ``RepaymentCurrencyMismatch``, ``LoanNotRepayable``,
    ``RepaymentReferenceReused``.
    """
    value = _clean_amount(amount, loan)
    reference = _clean_reference(reference)
    existing = _existing(reference, loan, value, value_date)
    if existing is not None:
        return existing, False
    today = today or clock.business_date(loan.program.time_zone)
    _check_value_date(loan, value_date, today)
    try:
        with transaction.atomic():
            return _record(loan.pk, value, value_date, reference, source, actor, today)
    except (IntegrityError, LedgerKeyReused):
        # Another request with this reference committed first (on another loan, or racing).
        existing = _existing(reference, loan, value, value_date)
        if existing is None:
            raise
        return existing, False


def _record(
    loan_id: int,
    amount: Decimal,
    value_date: dt.date,
    reference: str,
    source: str,
    actor: Any,
    today: dt.date,
) -> tuple[Repayment, bool]:
    loan = loan_lock(loan_id)
    existing = _existing(reference, loan, amount, value_date)
    if existing is not None:
        return existing, False
    _check_repayable(loan)
    _check_after_claim(loan, value_date)
    request = RepaymentRequest(amount, value_date, reference, source, actor, today)
    if loan.status in OPEN and value_date > loan.value_date:  # type: ignore[operator]
        loan_accrue_through(
            loan=loan, through=value_date - dt.timedelta(days=1), key=f"accrue:{reference}"
        )
    if loan.accrued_through is not None and value_date <= loan.accrued_through:
        repayment = repayment_apply_backdated(loan, request)
    else:
        repayment = repayment_apply_on_time(loan, request)
    audit_record(
        actor=actor, action=RECORDED, obj=repayment, after=repayment_audit_after(repayment, loan)
    )
    return repayment, True


def repayment_audit_after(repayment: Repayment, loan: Loan) -> dict[str, Any]:
    """What the audit row of a recorded repayment says (the loan as the repayment left it)."""
    return {
        "loan": loan.reference,
        "amount": str(repayment.amount),
        "value_date": str(repayment.value_date),
        "backdated": repayment.backdated,
        **{k: str(v) for k, v in Allocation.of(repayment).as_dict().items()},
        "loan_status": loan.status,
    }


def repayment_checks(
    *, loan: Loan, amount: Money, value_date: dt.date, reference: str, today: dt.date
) -> tuple[Decimal, str]:
    """The checks ``repayment_record_outcome`` makes before it writes, for a caller holding the
    loan's lock (the batch path): the cleaned amount and reference, or the error it raises."""
    value = _clean_amount(amount, loan)
    cleaned = _clean_reference(reference)
    _check_value_date(loan, value_date, today)
    _check_repayable(loan)
    return value, cleaned
