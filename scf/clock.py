"""The one place "now" and "today" come from, so COB and tests can run any date.

Tests freeze time by patching ``scf.clock.now``. Business dates are dates in a program's zone;
business days (for rolling due dates) are the official working days of a program's calendar.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from zoneinfo import ZoneInfo

import holidays
from django.utils import timezone


def now() -> dt.datetime:
    return timezone.now()


def business_date(tz_name: str, at: dt.datetime | None = None) -> dt.date:
    """The calendar date in ``tz_name`` at ``at`` (default: now)."""
    return (at or now()).astimezone(ZoneInfo(tz_name)).date()


@cache
def _calendar(country: str, year: int) -> holidays.HolidayBase:
    return holidays.country_holidays(country, years=year)


def is_business_day(day: dt.date, country: str) -> bool:
    """An official working day of ``country``'s calendar (a program's ``holiday_country``).

    The calendar's own weekend (Saturday and Sunday in most countries) and public holidays are
    days off, except the weekend days the government makes working days: China's State Council
    moves weekend days into working days around Spring Festival and National Day (调休), and
    such a Saturday is a business day. For a year whose schedule is not published yet the
    ``holidays`` package places the holidays by the statutory rules and knows no make-up days
    (see docs/architecture.md, "Business days").
    """
    return _calendar(country, day.year).is_working_day(day)


def roll_forward(day: dt.date, country: str) -> dt.date:
    """The same day if it is a business day of ``country``, else the next business day."""
    while not is_business_day(day, country):
        day += dt.timedelta(days=1)
    return day
