"""Release breaches by line: when the order feed sends ``shipped_quantity`` on its lines, the
breach is the value shipped beyond what was released, SKU by SKU where releases named lines (value
released without naming lines covering any SKU), not the whole order.

The order: TV-55 x 20 at 3,000.00 and TV-65 x 8 at 5,000.00 (100,000.00), 30 % margin, so
30,000.00 is releasable.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D
from typing import Any

import pytest
from rest_framework.test import APIClient

from lending.models import BreachStatus, ReleaseBreach
from lending.services.breaches import release_breach_resolve
from orders.models import SalesOrder, SalesOrderLine
from tests.conftest import client_for
from tests.integrations.feed_helpers import post_bulk
from tests.lending.active_loans import money_line
from tests.lending.tripartite_makers import tripartite_loan
from tests.orders.factories import UserFactory

pytestmark = pytest.mark.django_db
VALUE_DATE = dt.date(2026, 11, 2)
PRICES = {"TV-55": "3000.00", "TV-65": "5000.00"}
ORDERED = {"TV-55": 20, "TV-65": 8}


@pytest.fixture
def loan(agent: Any, enterprise: Any) -> Any:
    return tripartite_loan(
        money_line(agent, enterprise),
        order_value="100000.00",
        value_date=VALUE_DATE,
        lines=[("TV-55", "20", PRICES["TV-55"]), ("TV-65", "8", PRICES["TV-65"])],
    )


def report(
    enterprise: Any, loan: Any, version: int, shipped: dict[str, Any], status: str = "confirmed"
) -> Any:
    lines = []
    for sku in ("TV-55", "TV-65"):
        line = {"sku": sku, "quantity": ORDERED[sku], "unit_price": PRICES[sku]}
        if sku in shipped:
            line["shipped_quantity"] = shipped[sku]
        lines.append(line)
    order = loan.order
    payload = {
        "external_id": order.external_id,
        "agent_code": loan.agent.code,
        "amount": "100000.00",
        "currency": order.currency,
        "status": status,
        "order_date": order.order_date.isoformat(),
        "version": version,
        "lines": lines,
    }
    return post_bulk(APIClient(), enterprise.plain_api_key, {"orders": [payload]})


def release(loan: Any, admin: Any, body: dict[str, Any]) -> None:
    reply = client_for(admin).post(f"/api/v1/loans/{loan.pk}/releases/", body, format="json")
    assert reply.status_code == 201, reply.content


def test_shipped_beyond_the_lines_released_is_a_breach_of_that_part_only(
    loan: Any, enterprise: Any, enterprise_admin: Any
) -> None:
    release(loan, enterprise_admin, {"lines": [{"sku": "TV-65", "quantity": "4"}]})
    assert report(enterprise, loan, 2, {"TV-65": 4, "TV-55": "0"}).status_code == 200
    assert not ReleaseBreach.objects.exists()  # shipped exactly what was released
    assert report(enterprise, loan, 3, {"TV-65": "6", "TV-55": 0}).status_code == 200
    breach = ReleaseBreach.objects.get()
    assert (breach.reported_value, breach.released_value) == (D("30000.00"), D("20000.00"))
    assert breach.excess_value == D("10000.00")  # two TV-65 beyond the four released
    assert breach.order_status == "confirmed"
    listed = client_for(UserFactory(role="risk_reviewer")).get("/api/v1/breaches/").json()
    row = listed["results"][0]
    assert (row["reported_value"], row["released_value"], row["excess_value"]) == (
        "30000.00",
        "20000.00",
        "10000.00",
    )
    by_sku = {line["sku"]: line for line in row["lines"]}
    assert D(by_sku["TV-65"]["excess_quantity"]) == 2
    assert by_sku["TV-65"]["excess_value"] == "10000.00"
    assert D(by_sku["TV-55"]["excess_quantity"]) == 0


def test_value_released_without_lines_covers_any_sku(
    loan: Any, enterprise: Any, enterprise_admin: Any
) -> None:
    release(loan, enterprise_admin, {"value": "15000.00"})
    assert report(enterprise, loan, 2, {"TV-55": "5"}).status_code == 200
    assert not ReleaseBreach.objects.exists()
    # Lines and value together: 2 TV-65 by line (10,000) beside the 15,000 by value.
    release(loan, enterprise_admin, {"lines": [{"sku": "TV-65", "quantity": "2"}]})
    assert report(enterprise, loan, 3, {"TV-55": "7", "TV-65": "2"}).status_code == 200
    breach = ReleaseBreach.objects.get()
    # 7 TV-55 (21,000) shipped with no line released: 21,000 - the 15,000 released by value.
    assert (breach.reported_value, breach.excess_value) == (D("31000.00"), D("6000.00"))


def test_an_order_shipped_whole_without_quantities_counts_whole_as_before(
    loan: Any, enterprise: Any, enterprise_admin: Any
) -> None:
    release(loan, enterprise_admin, {"lines": [{"sku": "TV-65", "quantity": "4"}]})
    assert report(enterprise, loan, 2, {}, status="shipped").status_code == 200
    breach = ReleaseBreach.objects.get()
    assert (breach.reported_value, breach.excess_value) == (D("100000.00"), D("80000.00"))
    assert breach.lines == []


def test_a_line_without_a_quantity_counts_whole_once_the_order_is_shipped(
    loan: Any, enterprise: Any, enterprise_admin: Any
) -> None:
    release(loan, enterprise_admin, {"lines": [{"sku": "TV-55", "quantity": "10"}]})
    assert report(enterprise, loan, 2, {"TV-55": "10"}, status="shipped").status_code == 200
    breach = ReleaseBreach.objects.get()
    # TV-55 as released; the 8 TV-65 (no quantity sent, order shipped) all beyond it.
    assert breach.excess_value == D("40000.00")


def test_the_open_breach_follows_the_feed_and_a_resolved_one_returns_only_for_new_figures(
    loan: Any, enterprise: Any
) -> None:
    assert report(enterprise, loan, 2, {"TV-65": "1"}).status_code == 200
    assert ReleaseBreach.objects.get().excess_value == D("5000.00")
    assert report(enterprise, loan, 3, {"TV-65": "3"}).status_code == 200
    breach = ReleaseBreach.objects.get()  # still one, with the latest figures
    assert (breach.reported_value, breach.excess_value) == (D("15000.00"), D("15000.00"))
    release_breach_resolve(breach_id=breach.pk, actor=UserFactory(role="risk_reviewer"), note="ok")
    assert report(enterprise, loan, 4, {"TV-65": "3"}).status_code == 200
    assert not ReleaseBreach.objects.filter(status=BreachStatus.OPEN).exists()
    assert report(enterprise, loan, 5, {"TV-65": "4"}).status_code == 200
    assert ReleaseBreach.objects.get(status=BreachStatus.OPEN).excess_value == D("20000.00")


@pytest.mark.parametrize(
    ("shipped", "field"),
    [
        ({"TV-65": "9"}, "More shipped than the line's quantity."),
        ({"TV-65": "-1"}, "Quantity must be a positive number."),
        ({"TV-65": 1.5}, "Send quantities as integers or decimal strings."),
        ({"TV-65": "0.00001"}, "Quantity must have at most four decimal places."),
        ({"TV-65": "lots"}, "Quantity must be a positive number."),
    ],
)
def test_bad_shipped_quantities_are_refused_and_change_nothing(
    loan: Any, enterprise: Any, shipped: dict[str, Any], field: str
) -> None:
    reply = report(enterprise, loan, 2, shipped)
    assert reply.status_code in (400, 422), reply.content
    assert field in str(reply.json())
    assert SalesOrder.objects.get(pk=loan.order_id).version == 1
    assert not SalesOrderLine.objects.filter(shipped_quantity__isnull=False).exists()
    assert not ReleaseBreach.objects.exists()
