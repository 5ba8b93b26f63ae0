"""Daily accrual against hand-computed schedules: ACT/360, ACT/365F, cumulative rounding, the due
date rolled over a holiday, grace then penalty, days past due and their buckets.

Schedules run through the real close of business (``cob_run``), so on PostgreSQL they check the
set-based statement and on SQLite the per-loan demo path; the arithmetic is written out beside
each figure.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lending.dpd import dpd_bucket
from lending.models import Accrual, AccrualKind, Loan, LoanStatus
from lending.services.accrual import AccrualTerms, LoanState
from lending.services.accrual_loan import accrue_days
from lending.services.cob import cob_run
from lending.services.interest import interest_rounded, night_numerator
from lending.services.terms import due_date_for
from tests.lending.active_loans import active_loan, books_balance, money_line

pytestmark = pytest.mark.django_db

D = Decimal
V = dt.date(2025, 1, 6)  # a Monday


def day(n: int) -> dt.date:
    """The n-th day after the value date V (day(0) == V)."""
    return V + dt.timedelta(days=n)


def close(program_id: int, start: dt.date, end: dt.date) -> None:
    current = start
    while current <= end:
        assert cob_run(program_id=program_id, business_date=current, today=end).ran
        current += dt.timedelta(days=1)


def postings(loan: Loan, kind: str = AccrualKind.INTEREST) -> list[Decimal]:
    rows = Accrual.objects.filter(loan=loan, kind=kind, reversed_at__isnull=True)
    return list(rows.order_by("business_date").values_list("amount", flat=True))


@pytest.fixture
def line(agent: Any, enterprise: Any) -> Any:
    return money_line(agent, enterprise)


# --- the arithmetic -----------------------------------------------------------------------------


def test_a_night_is_base_times_rate_exactly() -> None:
    # The numerator of a night is base x rate, eight places, no rounding at all.
    assert night_numerator(D("0.01"), D("0.000001")) == D("1E-8")
    assert night_numerator(D("1000000.00"), D("0.043500")) == D("43500")
    # The largest base and rate the columns hold: (10^16 - 0.01) x (1000 - 10^-6), exactly.
    assert night_numerator(D("9999999999999999.99"), D("999.999999")) == D(
        "9999999989999999990.00000001"
    )
    with pytest.raises(ValueError, match="too many decimal places"):
        night_numerator(D("0.001"), D("0.000001"))


def test_interest_rounded_is_half_even_on_the_exact_quotient() -> None:
    assert interest_rounded(D("45"), 360) == D("0.12")  # 0.125: a tie, 2 is even
    assert interest_rounded(D("48.6"), 360) == D("0.14")  # 0.135: a tie, 3 is odd -> up
    assert interest_rounded(D("45.00000001"), 360) == D("0.13")  # just above the tie
    assert interest_rounded(D("44.99999999"), 360) == D("0.12")  # just below it
    assert interest_rounded(D("45.625"), 365) == D("0.12")  # 0.125 on ACT/365F
    # 1,000,000 x 4.35% / 365 = 119.1780821917808...: 119.18
    assert interest_rounded(D("43500"), 365) == D("119.18")


@given(
    numerator=st.decimals(min_value=D(0), max_value=D("1E24"), places=8),
    basis=st.sampled_from([360, 365]),
)
@settings(max_examples=300, deadline=None)
def test_interest_rounded_is_the_exact_quotient_rounded_half_even(
    numerator: Decimal, basis: int
) -> None:
    exact = Fraction(numerator) * 100 / basis  # in cents
    got = interest_rounded(numerator, basis) * 100
    assert abs(Fraction(got) - exact) <= Fraction(1, 2)
    if abs(Fraction(got) - exact) == Fraction(1, 2):  # a tie went to the even cent
        assert got % 2 == 0


def test_cumulative_rule_has_no_penny_drift_over_365_days() -> None:
    # 1,000,000.00 at 4.35% ACT/365F for 365 days: exactly 43,500.00 of interest.
    terms = AccrualTerms(V, day(400), 3, D("0.0435"), D("0.0652"), 365)
    start = LoanState(D("1000000.00"), D(0), D(0), D(0), D(0), D(0), D(0), 0, "active", None)
    state, rows = accrue_days(start, terms, day(0), day(364))
    posted = [row.amount for row in rows]
    assert len(posted) == 365
    # numerator: 365 x 1,000,000 x 4.35% = 15,877,500; / 365 = 43,500.00 exactly
    assert state.interest_numerator == D("15877500")
    assert sum(posted) == D("43500.00") == state.interest
    assert interest_rounded(state.interest_numerator, 365) == D("43500.00")
    # rounding each day instead: 119.18 x 365 = 43,500.70, 70 cents of drift
    naive = D("119.178082191781").quantize(D("0.01"), rounding=ROUND_HALF_EVEN) * 365
    assert naive == D("43500.70")
    assert set(posted) == {D("119.18"), D("119.17")}


def test_dpd_buckets() -> None:
    assert [dpd_bucket(n) for n in (0, 1, 30, 31, 60, 61, 90, 91, 400)] == [
        None,
        "1-30",
        "1-30",
        "31-60",
        "31-60",
        "61-90",
        "61-90",
        "90+",
        "90+",
    ]


# --- schedules through close of business --------------------------------------------------------


def test_act_360_posts_fifteen_a_day(line: Any) -> None:
    # 100,000.00 x 5.4% / 360 = 15.00 a day; V .. V+29 is 30 nights = 450.00
    loan = active_loan(line, principal="100000.00", value_date=V, annual_rate=D("0.054"))
    close(line.program_id, day(0), day(29))
    loan.refresh_from_db()
    assert postings(loan) == [D("15.00")] * 30
    assert loan.accrued_interest == D("450.00") == loan.interest_posted_cumulative
    assert loan.interest_numerator == D("162000")  # 30 x 100,000 x 5.4%
    assert loan.accrued_through == day(29)
    assert (loan.status, loan.days_past_due, loan.accrued_penalty) == ("active", 0, D("0.00"))
    books_balance()


def test_act_365f_alternates_cents_by_the_cumulative_rule(line: Any) -> None:
    # 100,000.00 x 5.4% = 5,400 a night, / 365 = 14.7945205479... of interest
    # cumulative: 5,400 / 365 = 14.794... -> 14.79; 10,800 / 365 = 29.589... -> 29.59 (+14.80);
    #             16,200 / 365 = 44.383... -> 44.38 (+14.79); 21,600 / 365 = 59.178... -> 59.18
    loan = active_loan(
        line, principal="100000.00", value_date=V, annual_rate=D("0.054"), day_count="ACT/365F"
    )
    close(line.program_id, day(0), day(9))
    loan.refresh_from_db()
    assert postings(loan)[:4] == [D("14.79"), D("14.80"), D("14.79"), D("14.80")]
    # 10 days: 54,000 / 365 = 147.945205... -> 147.95, and the postings add up to exactly that
    assert loan.interest_numerator == D("54000")
    assert sum(postings(loan)) == D("147.95") == loan.accrued_interest
    books_balance()


def test_small_principal_act_360_cumulative_cents(line: Any) -> None:
    # 1,234.56 x 4.5% / 360 = 0.15432 a day; cumulative 0.15432, 0.30864, 0.46296, 0.61728,
    # 0.7716 -> rounded 0.15, 0.31, 0.46, 0.62, 0.77 -> posted 0.15, 0.16, 0.15, 0.16, 0.15
    loan = active_loan(line, principal="1234.56", value_date=V, annual_rate=D("0.045"))
    close(line.program_id, day(0), day(9))
    loan.refresh_from_db()
    assert postings(loan)[:5] == [D("0.15"), D("0.16"), D("0.15"), D("0.16"), D("0.15")]
    # 10 days: 1.5432 -> 1.54
    assert loan.accrued_interest == D("1.54") == sum(postings(loan))
    books_balance()


def test_act_365f_penny_principal_accrues_zero_cents_until_the_cumulative_reaches_one(
    line: Any,
) -> None:
    # 10.00 x 3.65% / 365 = 0.001 a day: the first 5 days round to 0.00 (0.005 is a tie, 0 even),
    # the 6th reaches 0.006 -> 0.01
    loan = active_loan(
        line, principal="10.00", value_date=V, annual_rate=D("0.0365"), day_count="ACT/365F"
    )
    close(line.program_id, day(0), day(5))
    loan.refresh_from_db()
    assert postings(loan) == [D("0.00")] * 5 + [D("0.01")]
    assert loan.interest_numerator == D("2.19")  # 6 x 10.00 x 3.65%: 2.19 / 365 = 0.006
    assert loan.accrued_interest == D("0.01")
    books_balance()


def test_due_date_on_a_holiday_rolls_and_overdue_starts_after_the_rolled_date(line: Any) -> None:
    # 2025-07-03 + 90 days = 2025-10-01, National Day; the holiday runs to 10-08 -> due 10-09
    value_date = dt.date(2025, 7, 3)
    assert due_date_for(value_date, 90, "CN") == dt.date(2025, 10, 9)
    loan = active_loan(line, principal="50000.00", value_date=value_date, grace_days=3)
    assert loan.due_date == dt.date(2025, 10, 9)
    close(line.program_id, value_date, dt.date(2025, 10, 9))
    loan.refresh_from_db()
    assert (loan.status, loan.days_past_due) == (LoanStatus.ACTIVE, 0)
    close(line.program_id, dt.date(2025, 10, 10), dt.date(2025, 10, 10))
    loan.refresh_from_db()
    assert (loan.status, loan.days_past_due, dpd_bucket(loan.days_past_due)) == (
        LoanStatus.OVERDUE,
        1,
        "1-30",
    )
    # nights 07-03 .. 10-10 = 98 + 2 = 100 at 50,000 x 5.4% / 360 = 7.50 a night: 750.00
    assert loan.accrued_interest == D("750.00")
    assert loan.accrued_penalty == D("0.00")  # still in grace
    books_balance()


def test_grace_then_penalty_on_top_of_interest(line: Any) -> None:
    # 100,000.00, interest 5.4% / 360 = 15.00, penalty 8.1% / 360 = 22.50 a day; due V+30,
    # grace 3: penalty from V+34 on.
    loan = active_loan(
        line,
        principal="100000.00",
        value_date=V,
        due_date=day(30),
        grace_days=3,
        annual_rate=D("0.054"),
        penalty_rate=D("0.081"),
    )
    close(line.program_id, day(0), day(33))
    loan.refresh_from_db()
    assert (loan.status, loan.days_past_due, loan.accrued_penalty) == ("overdue", 3, D("0.00"))
    close(line.program_id, day(34), day(40))
    loan.refresh_from_db()
    # penalty nights V+34 .. V+40 = 7 x 22.50 = 157.50; interest 41 nights x 15.00 = 615.00
    assert postings(loan, AccrualKind.PENALTY) == [D("22.50")] * 7
    assert loan.accrued_penalty == D("157.50") == loan.penalty_posted_cumulative
    assert loan.accrued_interest == D("615.00")
    assert loan.days_past_due == 10
    penalty_rows = Accrual.objects.filter(loan=loan, kind=AccrualKind.PENALTY)
    assert penalty_rows.first().annual_rate == D("0.081000")
    books_balance()


def test_penalty_act_365f_and_dpd_into_the_next_bucket(line: Any) -> None:
    # 36,500.00: interest 7.3% / 365 = 7.30 a day; penalty 10.95% / 365 = 10.95 a day.
    # Due V+10, grace 0: penalty from V+11; by V+41 DPD is 31 ("31-60").
    loan = active_loan(
        line,
        principal="36500.00",
        value_date=V,
        due_date=day(10),
        grace_days=0,
        annual_rate=D("0.073"),
        penalty_rate=D("0.1095"),
        day_count="ACT/365F",
    )
    close(line.program_id, day(0), day(41))
    loan.refresh_from_db()
    assert loan.days_past_due == 31 and dpd_bucket(loan.days_past_due) == "31-60"
    assert loan.accrued_interest == D("7.30") * 42  # 306.60
    assert loan.accrued_penalty == D("10.95") * 31  # 339.45
    books_balance()


def test_loan_not_yet_disbursed_on_a_date_does_not_accrue(line: Any) -> None:
    # Two loans, the second disbursed 3 days later: it accrues from its own value date only.
    first = active_loan(line, principal="36000.00", value_date=V, annual_rate=D("0.05"))
    second = active_loan(line, principal="36000.00", value_date=day(3), annual_rate=D("0.05"))
    close(line.program_id, day(0), day(4))
    first.refresh_from_db()
    second.refresh_from_db()
    # 36,000 x 5% / 360 = 5.00 a night: 5 nights vs 2 nights
    assert (first.accrued_interest, second.accrued_interest) == (D("25.00"), D("10.00"))
    assert second.accrued_through == day(4)
    books_balance()
