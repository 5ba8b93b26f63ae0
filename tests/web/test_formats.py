"""Dates and times: one date format per language, a time always with its zone, and the same
local time in the pages and in the CSV exports (issue 17, item 8)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.template import Context, Template
from django.utils import translation

from lending.models import Loan
from scf.display import csv_date, csv_datetime, with_zone
from tests.web.conftest import World, login, make_loan

FOUR = Template(
    "{{ d|date:'DATE_FORMAT' }}|{{ d|date:'SHORT_DATE_FORMAT' }}|"
    "{{ t|date:'DATETIME_FORMAT' }}|{{ t|date:'SHORT_DATETIME_FORMAT' }}"
)
MOMENT = dt.datetime(2026, 11, 20, 17, 30, tzinfo=dt.UTC)  # 21 Nov 01:30 in Shanghai


@pytest.mark.parametrize(
    ("language", "day", "moment"),
    [
        ("en", "21 Nov 2026", "21 Nov 2026, 01:30 UTC+0800"),
        ("zh-hans", "2026年11月21日", "2026年11月21日 01:30 UTC+0800"),
    ],
)
def test_one_date_format_per_language_and_times_with_their_zone(
    language: str, day: str, moment: str
) -> None:
    with translation.override(language):
        text = FOUR.render(Context({"d": dt.date(2026, 11, 21), "t": MOMENT}))
    assert text.split("|") == [day, day, moment, moment]


def test_csv_helpers_write_the_same_local_time() -> None:
    assert csv_datetime(MOMENT) == "2026-11-21 01:30:00"
    assert csv_datetime(None) == "" and csv_date(None) == ""
    assert csv_date(dt.date(2026, 11, 21)) == "2026-11-21"
    assert with_zone("Requested at") == "Requested at (Asia/Shanghai)"


@pytest.mark.django_db
def test_pages_show_dates_and_times_one_way(world: World) -> None:
    order = world.order(order_date=dt.date(2026, 11, 21))
    loan = make_loan(world.line, "active", "1000.00", outstanding="1000.00")
    Loan.objects.filter(pk=loan.pk).update(requested_at=MOMENT, due_date=dt.date(2027, 2, 19))
    client = login(world.agent_user)
    orders = client.get("/orders/").content.decode()
    row = orders[orders.index(f'data-order="{order.external_id}"') :]
    assert "21 Nov 2026" in row[: row.index("</tr>")]
    page = client.get(f"/loans/{loan.pk}/").content.decode()
    assert "21 Nov 2026, 01:30 UTC+0800 — Requested" in page
    assert "19 Feb 2027" in page
    assert "Times are in Asia/Shanghai." in page
    client.post("/accounts/language/", {"language": "zh-hans"})
    assert "2026年11月21日 01:30 UTC+0800" in client.get(f"/loans/{loan.pk}/").content.decode()
