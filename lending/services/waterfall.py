"""The repayment waterfall and the day-by-day replay of a loan: pure arithmetic, no database.

* ``allocate``: a payment goes to penalty, then interest, then principal; the rest is an
  overpayment (owed back to the agent).
* ``replay``: from a loan's state at the end of one day, each following day applies that day's
  payments (in value-date, then arrival, order) and then the night's accrual
  (``lending.services.accrual.accrue_day``): how a backdated payment is put in its place.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from decimal import Decimal

from ..models import LoanStatus, Repayment
from .accrual import ZERO, AccrualTerms, DayAccrual, LoanState, accrue_day, days


@dataclass(frozen=True, slots=True)
class Allocation:
    penalty: Decimal = ZERO
    interest: Decimal = ZERO
    principal: Decimal = ZERO
    overpayment: Decimal = ZERO

    @classmethod
    def of(cls, repayment: Repayment) -> Allocation:
        return cls(
            repayment.to_penalty,
            repayment.to_interest,
            repayment.to_principal,
            repayment.to_overpayment,
        )

    def as_dict(self) -> dict[str, Decimal]:
        return {
            "penalty": self.penalty,
            "interest": self.interest,
            "principal": self.principal,
            "overpayment": self.overpayment,
        }

    def fields(self) -> dict[str, Decimal]:
        return {f"to_{name}": value for name, value in self.as_dict().items()}


def allocate(amount: Decimal, state: LoanState) -> Allocation:
    """The waterfall: penalty, interest, principal, then overpayment."""
    penalty = min(amount, state.penalty)
    interest = min(amount - penalty, state.interest)
    principal = min(amount - penalty - interest, state.outstanding)
    return Allocation(penalty, interest, principal, amount - penalty - interest - principal)


def apply_allocation(state: LoanState, allocation: Allocation) -> LoanState:
    state = replace(
        state,
        outstanding=state.outstanding - allocation.principal,
        interest=state.interest - allocation.interest,
        penalty=state.penalty - allocation.penalty,
    )
    if state.owed == 0:
        state = replace(state, status=LoanStatus.REPAID.value, days_past_due=0)
    return state


@dataclass(frozen=True, slots=True)
class Payment:
    """A payment to replay: its value date, amount and arrival order."""

    value_date: dt.date
    amount: Decimal
    order: int


def replay(
    state: LoanState,
    terms: AccrualTerms,
    payments: list[Payment],
    start: dt.date,
    accrue_to: dt.date,
) -> tuple[LoanState, list[Allocation], list[DayAccrual]]:
    """From ``start``: each day, that day's payments (in order), then the night's accrual.

    Accrues through ``accrue_to`` only (the loan's ``accrued_through``); payments dated later
    (today's, before tonight's COB) are applied without accruing their day.
    """
    allocations: dict[int, Allocation] = {}
    rows: list[DayAccrual] = []
    ordered = sorted(enumerate(payments), key=lambda item: (item[1].value_date, item[1].order))
    end = max([accrue_to, *(p.value_date for p in payments)])
    for day in days(start, end):
        for index, payment in ordered:
            if payment.value_date == day:
                allocations[index] = allocate(payment.amount, state)
                state = apply_allocation(state, allocations[index])
        if day <= accrue_to:
            state, day_rows = accrue_day(state, terms, day)
            rows.extend(day_rows)
    return state, [allocations[index] for index in range(len(payments))], rows
