"""Correcting the loans accrued before exact interest (migration ``0008_exact_interest``).

Before exact interest each night was rounded to 12 places and the rounded nights were summed, so
on a night whose exact total lands on (or a few trillionths from) a half cent, a loan's posted
total could be a cent off ``round_half_even(numerator / basis)``. The migration recomputed every
numerator exactly from the accrual rows; the amounts posted stay as they were. Here:

* ``accrual_discrepancies`` reads the active accrual rows of open and repaid loans, in index
  order, and gives each loan whose posted total differs, on some night, from the exact rounding
  of its numerator that night, with the first such night.
* ``loan_accrual_correct`` corrects one loan in its own transaction, under the repayment locks:
  its days are **replayed** from that night with exact arithmetic, as for a backdated repayment
  (``lending.services.repayment_apply.loan_replay``; entries keyed ``reverse:``, ``replay:``,
  ``unapply:`` and ``realloc:exact-interest:<loan reference>...``, on today's business date).
  A cent of interest the agent was over-charged and has paid goes to principal (open loan) or
  to ``agent_overpayments`` (repaid loan: owed back to the agent, like any overpayment). The
  loan is then exact on every night, and has nothing left to correct.
* When the replay would put principal back up (a payment would have to cover a cent more
  interest than was asked) or leave a repaid loan owing a cent, the loan is **left** as it is:
  the bank does not claim a cent that its own rounding did not charge. An open loan's next night
  posts the cent as interest if its total is short of the exact one; a repaid loan keeps the
  cent waived. The audit row ``accrual_correction_left`` records it, once.
* Written-off loans are not touched (their balances went to credit losses).

Every outcome is audited (``accrual_corrected``, ``accrual_correction_left``); running it again
changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from django.db import transaction

from scf import clock

from ..locks import loan_lock
from ..models import OPEN, Accrual, AuditLog, Loan, LoanStatus
from .accrual import ZERO, LoanState
from .audit import audit_record
from .interest import basis_for, interest_rounded
from .repayment_apply import Replayed, loan_replay, loan_state_save

CORRECTABLE = (*OPEN, LoanStatus.REPAID)
CORRECTED = "accrual_corrected"
LEFT = "accrual_correction_left"


class Outcome(StrEnum):
    CORRECTED = "corrected"
    LEFT = "left"
    EXACT = "exact"  # nothing to correct (any more)
    NOT_CORRECTABLE = "not_correctable"  # not open or repaid


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """A loan whose posted accruals are not the exact rounding, from ``first_night`` on."""

    loan_id: int
    first_night: dt.date


def accrual_discrepancies(*, loan_ids: Iterable[int] | None = None) -> Iterator[Discrepancy]:
    """Open and repaid loans whose posted accruals are off the exact rounding on some night."""
    rows = Accrual.objects.filter(reversed_at__isnull=True, loan__status__in=CORRECTABLE)
    if loan_ids is not None:
        rows = rows.filter(loan_id__in=list(loan_ids))
    ordered = rows.order_by("loan_id", "business_date", "kind").values_list(
        "loan_id", "loan__day_count", "kind", "business_date", "numerator", "amount"
    )
    current: int | None = None
    first: dt.date | None = None
    posted: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for loan_id, day_count, kind, night, numerator, amount in ordered.iterator(chunk_size=10_000):
        if loan_id != current:
            if current is not None and first is not None:
                yield Discrepancy(current, first)
            current, first, posted = loan_id, None, defaultdict(lambda: ZERO)
        posted[kind] += amount
        if first is None and posted[kind] != interest_rounded(numerator, basis_for(day_count)):
            first = night
    if current is not None and first is not None:
        yield Discrepancy(current, first)


class _WouldClaimACent(Exception):
    """The replay asks the agent for more than the bank charged: undone, the loan is left."""


def _claims_a_cent(replayed: Replayed) -> bool:
    before, after = replayed.before, replayed.after
    reopened = before.status == LoanStatus.REPAID and after.status != LoanStatus.REPAID
    return after.outstanding > before.outstanding or reopened


def _figures(state: LoanState) -> dict[str, str]:
    return {
        "status": state.status,
        "outstanding_principal": str(state.outstanding),
        "accrued_interest": str(state.interest),
        "accrued_penalty": str(state.penalty),
        "interest_posted": str(state.interest_posted),
        "penalty_posted": str(state.penalty_posted),
    }


def _was_left(loan: Loan) -> bool:
    return AuditLog.objects.filter(
        action=LEFT, object_type=loan._meta.label_lower, object_id=str(loan.pk)
    ).exists()


@transaction.atomic
def loan_accrual_correct(*, loan_id: int, actor: Any, today: dt.date | None = None) -> Outcome:
    """Correct one loan (see the module docstring); ``today`` defaults to its program's date."""
    loan = loan_lock(loan_id)
    if loan.status not in CORRECTABLE:
        return Outcome.NOT_CORRECTABLE
    found = next(accrual_discrepancies(loan_ids=[loan.pk]), None)
    if found is None:
        return Outcome.EXACT
    if _was_left(loan):
        return Outcome.LEFT
    today = today or clock.business_date(loan.program.time_zone)
    note = f"first night off the exact rounding: {found.first_night}"
    try:
        with transaction.atomic():
            replayed = loan_replay(
                loan,
                start=found.first_night,
                reference=f"exact-interest:{loan.reference}",
                today=today,
            )
            if _claims_a_cent(replayed):
                raise _WouldClaimACent
            loan_state_save(loan, replayed.before, replayed.after)
    except _WouldClaimACent:
        audit_record(
            actor=actor, action=LEFT, obj=loan, before=_figures(LoanState.of(loan)), note=note
        )
        return Outcome.LEFT
    audit_record(
        actor=actor,
        action=CORRECTED,
        obj=loan,
        before=_figures(replayed.before),
        after=_figures(replayed.after),
        note=note,
    )
    return Outcome.CORRECTED
