"""Business days and due dates: the program's official calendar, China's make-up working days.

The State Council moves weekend days into working days around Spring Festival and National Day
(调休): such a Saturday or Sunday is a business day, and a due date that lands on it stays there.
The calendar is the program's (``holiday_country``), from the pinned ``holidays`` package, which
knows the official schedule up to the last year the State Council has published (2026 in the
pinned release); for later years it estimates the holidays from the statutory rules and knows no
make-up days.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import holidays
import pytest

from lending.services.terms import due_date_for, terms_for
from scf.clock import is_business_day, roll_forward
from tests.lending.factories import ProgramFactory

D = Decimal


def test_make_up_working_saturday_and_sunday_are_business_days() -> None:
    # 2025 National Day: 10-01 .. 10-08 off, worked on Sunday 09-28 and Saturday 10-11.
    assert dt.date(2025, 9, 28).weekday() == 6 and is_business_day(dt.date(2025, 9, 28), "CN")
    assert dt.date(2025, 10, 11).weekday() == 5 and is_business_day(dt.date(2025, 10, 11), "CN")
    # 2026 Spring Festival: 02-15 .. 02-23 off, worked on Saturdays 02-14 and 02-28.
    assert is_business_day(dt.date(2026, 2, 14), "CN")
    assert is_business_day(dt.date(2026, 2, 28), "CN")
    # An ordinary weekend and a weekday inside the holiday are not.
    assert not is_business_day(dt.date(2025, 10, 18), "CN")
    assert not is_business_day(dt.date(2026, 2, 20), "CN")  # a Friday, given for Saturday 02-14


def test_due_date_on_a_make_up_working_saturday_is_not_rolled() -> None:
    # 2025-07-13 + 90 days = Saturday 2025-10-11, an official working day: due that day, not on
    # Monday 10-13 (two nights of interest the agent does not owe).
    assert due_date_for(dt.date(2025, 7, 13), 90, "CN") == dt.date(2025, 10, 11)
    # 2025-06-30 + 90 days = Sunday 2025-09-28, also worked.
    assert due_date_for(dt.date(2025, 6, 30), 90, "CN") == dt.date(2025, 9, 28)
    assert due_date_for(dt.date(2025, 11, 16), 90, "CN") == dt.date(2026, 2, 14)


def test_quote_charges_interest_to_the_make_up_working_day(enterprise: Any) -> None:
    program = ProgramFactory.build(
        enterprise=enterprise, annual_rate=D("0.054000"), day_count="ACT/360", tenor_days=90
    )
    terms = terms_for(program, D("125000.00"), dt.date(2025, 7, 13))
    assert terms.due_date == dt.date(2025, 10, 11)
    # 100,000.00 x 5.4% x 90 / 360 = 1,350.00 (92 nights, to Monday, would be 1,380.00)
    assert (terms.principal, terms.interest_to_maturity) == (D("100000.00"), D("1350.00"))


def test_due_date_inside_a_holiday_rolls_to_the_first_working_day_after_it() -> None:
    # 2025-10-03 is inside National Day (10-01 .. 10-08): due Thursday 10-09.
    assert due_date_for(dt.date(2025, 7, 5), 90, "CN") == dt.date(2025, 10, 9)
    # 2026-02-18 is inside Spring Festival (02-15 .. 02-23, with Friday 02-20 and Monday 02-23
    # given for the worked Saturdays): due Tuesday 02-24.
    assert due_date_for(dt.date(2025, 11, 20), 90, "CN") == dt.date(2026, 2, 24)
    assert roll_forward(dt.date(2026, 2, 15), "CN") == dt.date(2026, 2, 24)


def test_an_estimated_year_has_the_statutory_holidays_and_no_make_up_days() -> None:
    # The pinned ``holidays`` release knows the official schedule through 2026. For 2027 it
    # places the statutory holidays by rule (Spring Festival 02-06, observed to 02-10) and knows
    # no make-up working day, so every Saturday and Sunday of 2027 is a day off until a release
    # with the published schedule is pinned (see docs/architecture.md, "Business days").
    calendar = holidays.country_holidays("CN", years=2027)
    assert [day for day in calendar.weekend_workdays if day.year == 2027] == []
    assert due_date_for(dt.date(2026, 11, 10), 90, "CN") == dt.date(2027, 2, 11)  # from 02-08
    assert due_date_for(dt.date(2026, 11, 22), 90, "CN") == dt.date(2027, 2, 22)  # from Sat 02-20
    assert not is_business_day(dt.date(2027, 2, 20), "CN")


@pytest.mark.parametrize(
    ("country", "due"),
    [
        ("CN", dt.date(2025, 10, 11)),  # a make-up working Saturday
        ("US", dt.date(2025, 10, 14)),  # Saturday, Sunday, then Columbus Day
    ],
)
def test_each_program_rolls_by_its_own_calendar(
    enterprise: Any, country: str, due: dt.date
) -> None:
    program = ProgramFactory.build(enterprise=enterprise, holiday_country=country, tenor_days=90)
    assert terms_for(program, D("10000.00"), dt.date(2025, 7, 13)).due_date == due
