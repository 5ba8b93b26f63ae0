"""The one place "now" and "today" come from, so COB and tests can run any date.

Tests freeze time by patching ``scf.clock.now``. Business dates are dates in a program's zone.
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


def is_business_day(day: dt.date, country: str = "CN") -> bool:
    return day.weekday() < 5 and day not in _calendar(country, day.year)


def roll_forward(day: dt.date, country: str = "CN") -> dt.date:
    """The same day if it is a business day, else the next business day."""
    while not is_business_day(day, country):
        day += dt.timedelta(days=1)
    return day
