"""Releases by order lines racing on one SKU: never more units than were ordered, and never more
value than was paid for, however many requests arrive together (real threads, each with its own
PostgreSQL connection, through the API).

The order: TV-55 x 20 at 3,000.00 and TV-65 x 8 at 5,000.00 (100,000.00), 30 % margin.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D
from typing import Any

import pytest

from lending.models import GoodsHold, GoodsHoldLine, Release, ReleaseStatus
from lending.services.repayments import repayment_record
from tests.conftest import client_for
from tests.lending.active_loans import books_balance, money_line
from tests.lending.tripartite_makers import tripartite_loan
from tests.orders.factories import UserFactory
from tests.reliability.race_helpers import run_at_once, server_errors

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
VALUE_DATE = dt.date(2026, 11, 2)
ONE_TV65 = [{"sku": "TV-65", "quantity": "1"}]
TV65_AND_THREE_TV55 = [{"sku": "TV-65", "quantity": "1"}, {"sku": "TV-55", "quantity": "3"}]


def _loan(agent: Any, enterprise: Any, *, repaid: str | None) -> Any:
    loan = tripartite_loan(
        money_line(agent, enterprise),
        order_value="100000.00",
        value_date=VALUE_DATE,
        lines=[("TV-55", "20", "3000.00"), ("TV-65", "8", "5000.00")],
    )
    if repaid:
        repayment_record(
            loan=loan,
            amount=D(repaid),
            value_date=VALUE_DATE,
            reference="RP-RACE",
            source="api",
            actor=None,
            today=VALUE_DATE,
        )
    return loan


def _race(loan: Any, enterprise: Any, bodies: list[list[dict[str, str]]]) -> list[Any]:
    admin = UserFactory(role="enterprise_admin", enterprise=enterprise)
    client_for(admin)  # the token, before the race
    path = f"/api/v1/loans/{loan.pk}/releases/"

    def ask(lines: list[dict[str, str]]) -> Any:
        return lambda: client_for(admin).post(path, {"lines": lines}, format="json")

    replies = run_at_once([ask(body) for body in bodies], floor=20)
    assert server_errors(replies) == []
    return replies


def _released(loan: Any) -> dict[str, D]:
    rows = GoodsHoldLine.objects.filter(hold__loan=loan).values_list("sku", "released_quantity")
    return dict(rows)


def test_racing_line_releases_never_take_more_units_than_ordered(
    agent: Any, enterprise: Any
) -> None:
    # Fully repaid: all 100,000.00 is releasable, so only the 8 TV-65 ordered bound the race.
    loan = _loan(agent, enterprise, repaid="70000.00")
    bodies = [ONE_TV65, TV65_AND_THREE_TV55] * 15
    replies = _race(loan, enterprise, bodies)
    authorised = [(b, r) for b, r in zip(bodies, replies, strict=True) if r.status_code == 201]
    refused = [r for r in replies if r.status_code != 201]
    assert len(authorised) == 8
    assert {r.status_code for r in refused} == {422}
    assert all("TV-65" in r.json()["fields"]["lines"][0] for r in refused)
    mixed = sum(1 for body, _ in authorised if body is TV65_AND_THREE_TV55)
    assert _released(loan) == {"TV-65": D("8"), "TV-55": D(3 * mixed)}
    value = D("5000.00") * 8 + D("9000.00") * mixed
    held = GoodsHold.objects.get(loan=loan)
    assert held.released_value == value
    assert sum(D(r.json()["release"]["value"]) for _, r in authorised) == value
    assert Release.objects.filter(status=ReleaseStatus.AUTHORISED).count() == 8
    assert not Release.objects.filter(status=ReleaseStatus.REFUSED).exists()
    books_balance()


def test_racing_line_releases_stop_exactly_at_what_was_paid_for(
    agent: Any, enterprise: Any
) -> None:
    # 30,000.00 releasable: six TV-65 are paid for, eight were ordered; 30 ask for one each.
    loan = _loan(agent, enterprise, repaid=None)
    replies = _race(loan, enterprise, [ONE_TV65] * 30)
    statuses = sorted(r.status_code for r in replies)
    assert (statuses.count(201), statuses.count(409)) == (6, 24)
    assert {r.json()["code"] for r in replies if r.status_code == 409} == {"release_exceeds_paid"}
    held = GoodsHold.objects.get(loan=loan)
    assert held.released_value == held.releasable_value == D("30000.00")
    # The refused requests took no units: the SKU's row moved with the value, no further.
    assert _released(loan) == {"TV-55": D("0"), "TV-65": D("6")}
    assert Release.objects.filter(status=ReleaseStatus.REFUSED).count() == 24
    books_balance()
