"""Loan arithmetic: principal, due date, interest. Decimal only, rounding named at each step."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal

from scf.clock import roll_forward
from scf.money import CENT

from ..models import Program
from .interest import EXACT, basis_for, interest_rounded, numerator_for


def principal_for(order_amount: Decimal, advance_rate: Decimal) -> Decimal:
    """Order amount x advance rate, rounded down to the cent."""
    return (order_amount * advance_rate).quantize(CENT, rounding=ROUND_DOWN)


def largest_order_for(principal_cap: Decimal, advance_rate: Decimal) -> Decimal:
    """The largest order amount (in cents) whose principal (``principal_for``) is at most
    ``principal_cap``: what an agent with that much credit left could still finance."""
    if advance_rate <= 0 or principal_cap < 0:
        raise ValueError("advance rate must be positive and the cap not negative")
    # principal_for(a) <= cap  <=>  a x rate < cap + 1 cent: the last cent below that bound.
    amount = ((principal_cap + CENT) / advance_rate).quantize(CENT, rounding=ROUND_CEILING) - CENT
    while principal_for(amount, advance_rate) > principal_cap:  # the division's last digit
        amount -= CENT
    while principal_for(amount + CENT, advance_rate) <= principal_cap:
        amount += CENT
    return max(amount, Decimal("0.00"))


def interest_for(principal: Decimal, annual_rate: Decimal, days: int, day_count: str) -> Decimal:
    """Simple interest over ``days`` actual days: ``principal x rate x days / basis``, exact,
    rounded half-even to the cent once (``lending.services.interest``), as the accruals are; a
    loan repaid on its due date is charged exactly this."""
    return interest_rounded(numerator_for(principal, annual_rate, days), basis_for(day_count))


def interest_still_to_post(
    *,
    numerator: Decimal,
    posted: Decimal,
    principal: Decimal,
    annual_rate: Decimal,
    nights: int,
    day_count: str,
) -> Decimal:
    """What a loan's accruals will post over ``nights`` more nights on ``principal``: the exact
    rounding of its numerator then, less what it has posted (``numerator``, ``posted``) now."""
    later = EXACT.add(numerator, numerator_for(principal, annual_rate, nights))
    return interest_rounded(later, basis_for(day_count)) - posted


def due_date_for(value_date: dt.date, tenor_days: int, holiday_country: str) -> dt.date:
    """Value date + tenor, rolled forward to the next business day."""
    return roll_forward(value_date + dt.timedelta(days=tenor_days), holiday_country)


@dataclass(frozen=True)
class Terms:
    principal: Decimal
    currency: str
    advance_rate: Decimal
    annual_rate: Decimal
    day_count: str
    tenor_days: int
    value_date: dt.date
    due_date: dt.date
    interest_to_maturity: Decimal

    @property
    def total_repayable(self) -> Decimal:
        return self.principal + self.interest_to_maturity


def terms_for(program: Program, order_amount: Decimal, value_date: dt.date) -> Terms:
    principal = principal_for(order_amount, program.advance_rate)
    due = due_date_for(value_date, program.tenor_days, program.holiday_country)
    return Terms(
        principal=principal,
        currency=program.currency,
        advance_rate=program.advance_rate,
        annual_rate=program.annual_rate,
        day_count=program.day_count,
        tenor_days=program.tenor_days,
        value_date=value_date,
        due_date=due,
        interest_to_maturity=interest_for(
            principal, program.annual_rate, (due - value_date).days, program.day_count
        ),
    )
