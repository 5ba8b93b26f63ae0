"""A settled disbursement that came back: the bank returned the payment (a camt credit with
``RvslInd`` or ``RtrInf``), so the core enterprise was never paid and the loan must not stand as
paid out. No bank calls here: the file rail (``integrations.bank.files.returns``) calls it when
it reads the return.

When nothing has happened on the loan but the passing of days (``active`` or ``overdue``, no
repayment, no guarantee claim, no tripartite margin paid out with it), the return undoes the
disbursement, as the failed-payment path (``disbursement.disbursement_fail``) would have if the
bank had refused the payment outright:

* the interest and penalty accrued since the value date are reversed (the accrual rows marked
  reversed, one reversing entry per kind, ``reverse:return:<loan reference>:<kind>``): no
  interest is owed on money the enterprise never had;
* the disbursement entry is reversed on the return's booking date
  (``disburse-return:<loan>``: Dr settlement / Cr principal receivable), which is the posting
  the bank's return entry reconciles against;
* the loan becomes ``disbursement_failed`` (nothing outstanding), the disbursement ``failed``
  with the ISO return reason; the line's and program's outstanding principal is given back
  (``credit_repaid``: the credit line is restored);
* a ``disbursement_failed`` review case opens with a note saying the payment came back and why,
  and the audit row ``loan.disbursement_returned`` records it.

Anything else (a repayment already recorded, a claim raised, a tripartite loan whose margin went
out with the payment, a loan not in a paid-out state) cannot be unwound by a rule: the loan is
left as it is, a ``disbursement_failed`` case opens saying so (audit
``loan.disbursement_return_review``), and the caller keeps the money in suspense (the file rail's
unapplied-credit queue) until a person decides.

Once only: the reversal's idempotency key (or, for a case, its audit row) is checked under the
loan's lock, so a second call (the same return imported again, or a second worker) changes
nothing (``already``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from django.db import transaction

from scf import clock

from ..locks import disbursement_lock, loans_locked
from ..models import (
    Accrual,
    AuditLog,
    DisbursementStatus,
    GoodsHold,
    GuaranteeClaim,
    JournalEntry,
    Loan,
    LoanStatus,
    Repayment,
    Review,
    ReviewKind,
)
from .audit import audit_record
from .credit import credit_repaid
from .ledger import ledger_reverse
from .repayment_apply import accruals_reverse

ZERO = Decimal("0.00")
PAID_OUT = (LoanStatus.ACTIVE, LoanStatus.OVERDUE)
REVIEW_ACTION = "loan.disbursement_return_review"


class ReturnOutcome(StrEnum):
    REVERSED = "reversed"  # the loan is undone; ``journal_key`` books the money back
    REVIEW = "review"  # left for a person: the money waits in suspense
    ALREADY = "already"  # this return was applied before


@dataclass(frozen=True)
class DisbursementReturn:
    outcome: ReturnOutcome
    loan: Loan
    journal_key: str = ""


def return_key(loan_id: int) -> str:
    return f"disburse-return:{loan_id}"


def _note(text: str, now: dt.datetime) -> dict[str, str]:
    return {"by": "system", "at": now.isoformat(), "action": "open", "note": text[:500]}


def _case(
    loan: Loan, text: str, action: str, before: dict[str, str], after: dict[str, str], detail: str
) -> None:
    """The ``disbursement_failed`` case saying what came back, and its audit row."""
    now = clock.now()
    Review.objects.create(
        loan=loan, kind=ReviewKind.DISBURSEMENT_FAILED, created_at=now, notes=[_note(text, now)]
    )
    audit_record(
        actor=None, action=action, obj=loan, before=before, after=after, note=detail[:2000]
    )


def _why_not(loan: Loan, settled: bool) -> str:
    """Why the return cannot undo the loan by itself ('' when it can)."""
    if not settled or loan.status not in PAID_OUT:
        return f"the loan is {loan.status}"
    if Repayment.objects.filter(loan=loan).exists():
        return "the loan has repayments"
    if GuaranteeClaim.objects.filter(loan=loan).exists():
        return "a guarantee claim was raised on the loan"
    if GoodsHold.objects.filter(loan=loan).exists():
        return "the agent's margin went out with the payment (tripartite)"
    return ""


def _undo(loan: Loan, business_date: dt.date, reason: str) -> str:
    """Reverse the accruals and the disbursement entry; the loan's balances back to nothing."""
    accruals = list(Accrual.objects.filter(loan=loan, reversed_at__isnull=True).order_by("pk"))
    accruals_reverse(loan, accruals, f"return:{loan.reference}", business_date)
    original = JournalEntry.objects.get(idempotency_key=f"disburse:{loan.pk}")
    key = return_key(loan.pk)
    ledger_reverse(
        entry=original,
        idempotency_key=key,
        business_date=business_date,
        description=f"disbursement of {loan.reference} returned by the bank ({reason})"[:200],
    )
    loan.status = LoanStatus.DISBURSEMENT_FAILED
    loan.outstanding_principal = ZERO
    loan.accrued_interest = loan.accrued_penalty = ZERO
    loan.interest_numerator = loan.penalty_numerator = Decimal(0)
    loan.interest_posted_cumulative = loan.penalty_posted_cumulative = ZERO
    loan.days_past_due = 0
    loan.accrued_through = None
    loan.save(
        update_fields=[
            "status",
            "outstanding_principal",
            "accrued_interest",
            "accrued_penalty",
            "interest_numerator",
            "penalty_numerator",
            "interest_posted_cumulative",
            "penalty_posted_cumulative",
            "days_past_due",
            "accrued_through",
        ]
    )
    return key


@transaction.atomic
def disbursement_return(
    *, disbursement_id: int, reason_code: str, detail: str, business_date: dt.date
) -> DisbursementReturn:
    """The bank returned a disbursement (see the module docstring). Locks loan -> disbursement
    -> (by conditional UPDATEs, last) line -> program, as the other disbursement transitions."""
    loan = loans_locked().select_related("program").get(disbursement__pk=disbursement_id)
    disbursement = disbursement_lock(disbursement_id)
    key = return_key(loan.pk)
    if JournalEntry.objects.filter(idempotency_key=key).exists():
        return DisbursementReturn(ReturnOutcome.ALREADY, loan, key)
    code = (reason_code or "NARR")[:16]
    reason = f"{code}: {detail}" if detail else code
    before = {"status": loan.status, "outstanding_principal": str(loan.outstanding_principal)}
    blocker = _why_not(loan, disbursement.status == DisbursementStatus.SETTLED)
    if blocker:
        if AuditLog.objects.filter(
            action=REVIEW_ACTION, object_type="lending.loan", object_id=str(loan.pk)
        ).exists():
            return DisbursementReturn(ReturnOutcome.ALREADY, loan)
        _case(
            loan,
            f"The payment came back ({reason}) but {blocker}: decide by hand.",
            REVIEW_ACTION,
            before,
            {"reason_code": code, "blocked_by": blocker},
            detail,
        )
        return DisbursementReturn(ReturnOutcome.REVIEW, loan)
    principal = loan.outstanding_principal
    before |= {"accrued_interest": str(loan.accrued_interest)}
    before |= {"accrued_penalty": str(loan.accrued_penalty)}
    _undo(loan, business_date, reason)
    disbursement.status = DisbursementStatus.FAILED
    disbursement.bank_reason_code = code
    disbursement.last_error = f"returned after settlement: {reason}"[:2000]
    disbursement.save(update_fields=["status", "bank_reason_code", "last_error"])
    _case(
        loan,
        f"The payment came back from the bank ({reason}); loan reversed.",
        "loan.disbursement_returned",
        before,
        {"status": loan.status, "reason_code": code, "ledger": key},
        detail,
    )
    credit_repaid(line_id=loan.credit_line_id, program_id=loan.program_id, principal=principal)
    return DisbursementReturn(ReturnOutcome.REVERSED, loan, key)
