"""Dates and times as people read them: in the local time zone, one format per language.

Pages show every date with ``{{ value|date:"DATE_FORMAT" }}`` and every moment with
``{{ value|date:"DATETIME_FORMAT" }}``; the formats per language are in ``scf/formats`` (the same
date format everywhere, a time always with its UTC offset). Text for spreadsheets and other
programs (CSV exports) uses the helpers here: the same local time, written ``2026-11-20 14:05:09``
so that it sorts, with the time zone named once, in the column's heading (``with_zone``).

The local time zone is the current one: ``TIME_ZONE`` (Asia/Shanghai by default) unless a request
activated another.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone


def zone_name() -> str:
    """The time zone times are shown in (``Asia/Shanghai``)."""
    return timezone.get_current_timezone_name()


def with_zone(heading: str) -> str:
    """A column heading for times, naming their zone: ``Requested at (Asia/Shanghai)``."""
    return f"{heading} ({zone_name()})"


def csv_datetime(value: dt.datetime | None) -> str:
    """A moment in the local time zone, to the second (``2026-11-20 14:05:09``); "" for none."""
    if value is None:
        return ""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")


def csv_date(value: dt.date | None) -> str:
    """A date as ``2026-11-20``; "" for none."""
    return "" if value is None else value.isoformat()
