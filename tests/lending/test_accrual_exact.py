"""Interest is exact before it is rounded: the accruals, the close of business and the quote all
round the exact rational value of principal x rate x nights / basis, half-even to the cent.

The reference is ``fractions.Fraction``. Half-cent totals (ties) are generated on purpose: they
are where rounding the nights first (to any number of places) turns the total the wrong way.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lending.models import Loan, LoanStatus
from lending.replies import loan_schedule
from lending.services.accrual import AccrualTerms, LoanState
from lending.services.accrual_loan import accrue_days
from lending.services.cob import cob_run
from lending.services.repayments import repayment_record
from lending.services.terms import interest_for
from tests.lending.active_loans import active_loan, books_balance, money_line

D = Decimal
V = dt.date(2025, 1, 6)
DAY_COUNTS = {360: "ACT/360", 365: "ACT/365F"}
MAX_CENTS = 10**13  # principals up to 100 billion
DB_MAX_CENTS = 2 * 10**9  # four loans of up to 20 million fit a test program's limit


def day(n: int) -> dt.date:
    return V + dt.timedelta(days=n)


def exact_cents(principal: Decimal, rate: Decimal, nights: int, basis: int) -> Decimal:
    """principal x rate x nights / basis, exactly, rounded half-even to the cent."""
    cents = Fraction(principal) * Fraction(rate) * nights * 100 / basis
    whole = math.floor(cents)
    rest = cents - whole
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and whole % 2 == 1):
        whole += 1
    return Decimal(whole).scaleb(-2)


def is_tie(principal: Decimal, rate: Decimal, nights: int, basis: int) -> bool:
    cents = Fraction(principal) * Fraction(rate) * nights * 100 / basis
    return cents - math.floor(cents) == Fraction(1, 2)


@st.composite
def tie_terms(
    draw: st.DrawFn, nights: int, basis: int, max_cents: int = MAX_CENTS
) -> tuple[Decimal, Decimal]:
    """A principal (cents) and rate (millionths) whose interest over ``nights`` is a half cent.

    Interest in cents is c x m x nights / (basis x 10^6): a tie when c x m x nights is an odd
    multiple of half the denominator, so c solves a linear congruence (when it has a solution).
    """
    micro = draw(st.integers(1, 300_000))
    modulus = basis * 10**6
    half = modulus // 2
    factor = micro * nights % modulus
    common = math.gcd(factor, modulus)
    assume(half % common == 0)
    step = modulus // common
    first = half // common * pow(factor // common, -1, step) % step
    assume(first <= max_cents)
    cents = first + step * draw(st.integers(0, (max_cents - first) // step))
    principal, rate = D(cents).scaleb(-2), D(micro).scaleb(-6)
    assert is_tie(principal, rate, nights, basis)
    return principal, rate


def random_terms(max_cents: int = MAX_CENTS) -> st.SearchStrategy[tuple[Decimal, Decimal]]:
    return st.tuples(
        st.integers(1, max_cents).map(lambda c: D(c).scaleb(-2)),
        st.integers(1, 300_000).map(lambda m: D(m).scaleb(-6)),
    )


@st.composite
def loan_terms(
    draw: st.DrawFn, nights: int, basis: int, max_cents: int = MAX_CENTS
) -> tuple[Decimal, Decimal]:
    return draw(st.one_of(tie_terms(nights, basis, max_cents), random_terms(max_cents)))


def fresh_state(principal: Decimal) -> LoanState:
    zero = D("0.00")
    return LoanState(principal, zero, zero, D(0), zero, D(0), zero, 0, "active", None)


# --- hand-computed ties -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("principal", "nights", "expected"),
    [
        # 10,000.00 x 4.35% x 93 / 360 = 112.375 exactly: half-even gives 112.38 (7 is odd).
        # Rounding each night to 12 places first, 1.208333333333 x 93 = 112.374999999969: 112.37.
        ("10000.00", 93, D("112.38")),
        # 50,000.00 x 4.35% x 15 / 360 = 90.625 exactly: half-even gives 90.62 (2 is even).
        # Nights at 12 places, 6.041666666667 x 15 = 90.625000000005: 90.63.
        ("50000.00", 15, D("90.62")),
    ],
)
@pytest.mark.django_db
def test_a_half_cent_total_rounds_half_even_from_the_exact_value_and_matches_the_quote(
    agent: Any, enterprise: Any, principal: str, nights: int, expected: Decimal
) -> None:
    line = money_line(agent, enterprise, annual_rate=D("0.043500"), day_count="ACT/360")
    loan = active_loan(line, principal=principal, value_date=V, due_date=day(nights))
    for n in range(nights):
        assert cob_run(program_id=line.program_id, business_date=day(n), today=day(nights)).ran
    loan.refresh_from_db()
    quote = interest_for(D(principal), D("0.0435"), nights, "ACT/360")
    assert loan.accrued_interest == loan.interest_posted_cumulative == quote == expected
    # The agent pays the quoted total on the due date: the loan is repaid, nothing left over.
    repayment = repayment_record(
        loan=loan,
        amount=D(principal) + quote,
        value_date=day(nights),
        reference=f"ON-TIME-{nights}",
        source="api",
        actor=None,
        today=day(nights),
    )
    loan.refresh_from_db()
    assert (loan.status, loan.outstanding_principal, loan.accrued_interest) == (
        LoanStatus.REPAID,
        D("0.00"),
        D("0.00"),
    )
    assert repayment.to_overpayment == D("0.00")
    books_balance()


@pytest.mark.django_db
def test_the_schedule_of_a_loan_being_accrued_shows_the_exact_interest_to_maturity(
    agent: Any, enterprise: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 10,000.00 at 4.35% ACT/360 for 93 nights: 112.375 exactly, 112.38. After 3 nights 3.625
    # is posted as 3.62; the other 90 nights alone are 108.75, so adding the two rounded parts
    # would show 112.37 and leave the agent a cent short on the due date.
    line = money_line(agent, enterprise, annual_rate=D("0.043500"), day_count="ACT/360")
    loan = active_loan(line, principal="10000.00", value_date=V, due_date=day(93))
    for n in range(3):
        cob_run(program_id=line.program_id, business_date=day(n), today=day(3))
    monkeypatch.setattr("scf.clock.now", lambda: dt.datetime(2025, 1, 9, 2, tzinfo=dt.UTC))
    loan.refresh_from_db()
    assert loan.accrued_interest == D("3.62")
    [instalment] = loan_schedule(loan)
    assert (instalment["interest"], instalment["total"]) == (D("112.38"), D("10112.38"))


# --- properties ---------------------------------------------------------------------------------


@given(data=st.data(), nights=st.integers(1, 400), basis=st.sampled_from([360, 365]))
@settings(max_examples=400, deadline=None)
def test_every_night_posts_the_exact_cumulative_interest_rounded_half_even(
    data: st.DataObject, nights: int, basis: int
) -> None:
    principal, rate = data.draw(loan_terms(nights, basis))
    terms = AccrualTerms(V, day(nights), 0, rate, D("0.1"), basis)
    state, rows = accrue_days(fresh_state(principal), terms, day(0), day(nights - 1))
    posted = D(0)
    for night, row in enumerate(rows, start=1):
        posted += row.amount
        assert posted == exact_cents(principal, rate, night, basis)
    assert state.interest == state.interest_posted == posted
    assert interest_for(principal, rate, nights, DAY_COUNTS[basis]) == posted


@given(data=st.data(), nights=st.integers(1, 30))
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.django_db
def test_cob_total_after_n_nights_is_the_exact_interest_and_the_quote_repays_an_on_time_loan(
    agent: Any, enterprise: Any, data: st.DataObject, nights: int
) -> None:
    """Loans of random and half-cent terms, both day counts, through ``nights`` real COBs."""
    line = money_line(agent, enterprise)
    loans: list[tuple[Loan, Decimal, Decimal, int]] = []
    for index in range(4):
        basis = data.draw(st.sampled_from([360, 365]))
        terms = tie_terms if index < 2 else loan_terms
        principal, rate = data.draw(terms(nights, basis, DB_MAX_CENTS))
        loan = active_loan(
            line,
            principal=str(principal),
            value_date=V,
            due_date=day(nights),
            annual_rate=rate,
            day_count=DAY_COUNTS[basis],
        )
        loans.append((loan, principal, rate, basis))
    for n in range(nights):
        assert cob_run(program_id=line.program_id, business_date=day(n), today=day(nights)).ran
    for loan, principal, rate, basis in loans:
        loan.refresh_from_db()
        quote = interest_for(principal, rate, nights, DAY_COUNTS[basis])
        assert loan.accrued_interest == exact_cents(principal, rate, nights, basis) == quote
        repayment = repayment_record(
            loan=loan,
            amount=principal + quote,
            value_date=day(nights),
            reference=f"ON-TIME-{loan.pk}",
            source="api",
            actor=None,
            today=day(nights),
        )
        loan.refresh_from_db()
        assert (loan.status, repayment.to_overpayment) == (LoanStatus.REPAID, D("0.00"))
    books_balance()
