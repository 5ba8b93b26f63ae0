"""Goods release: only what the agent has paid for (margin + principal repaid) may leave the hold.

Over the API (enterprise admin token, the enterprise's integration key, the agent), by value or
by order lines; refusals are 409 ``release_exceeds_paid`` with the figures and kept on record;
bad input writes nothing; each repayment raises what is releasable; and 50 requests racing on
one financing authorise exactly as many as were paid for.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D
from typing import Any

import pytest
from rest_framework.test import APIClient

from lending.models import GoodsHold, GoodsHoldLine, HoldStatus, Release, ReleaseStatus
from lending.services.book_check import book_check
from lending.services.repayments import repayment_record
from tests.conftest import client_for
from tests.lending.active_loans import active_loan, books_balance, money_line
from tests.lending.tripartite_makers import tripartite_loan
from tests.orders.factories import EnterpriseFactory, UserFactory
from tests.reliability.race_helpers import run_at_once, server_errors

pytestmark = pytest.mark.django_db
VALUE_DATE = dt.date(2026, 11, 2)


@pytest.fixture
def line(agent: Any, enterprise: Any) -> Any:
    return money_line(agent, enterprise)


@pytest.fixture
def loan(line: Any) -> Any:
    # 100,000 at 30 % margin: 30,000 releasable at once, 70,000 lent.
    return tripartite_loan(
        line,
        order_value="100000.00",
        value_date=VALUE_DATE,
        lines=[("TV-55", "20", "3000.00"), ("TV-65", "8", "5000.00")],
    )


def url(loan: Any) -> str:
    return f"/api/v1/loans/{loan.pk}/releases/"


def hold(loan: Any) -> GoodsHold:
    return GoodsHold.objects.get(loan=loan)


def test_enterprise_releases_a_value_within_what_was_paid(loan: Any, enterprise_admin: Any) -> None:
    reply = client_for(enterprise_admin).post(url(loan), {"value": "12000.00"}, format="json")
    assert reply.status_code == 201, reply.content
    body = reply.json()
    assert body["release"]["status"] == "authorised"
    assert (body["released_value"], body["releasable_value"]) == ("12000.00", "30000.00")
    assert hold(loan).status == HoldStatus.PARTLY_RELEASED
    detail = client_for(enterprise_admin).get(f"/api/v1/loans/{loan.pk}/").json()
    assert (detail["released_value"], detail["releasable_value"]) == ("12000.00", "30000.00")
    books_balance()


def test_release_beyond_what_was_paid_is_refused_with_the_releasable_value(
    loan: Any, enterprise_admin: Any
) -> None:
    client = client_for(enterprise_admin)
    assert client.post(url(loan), {"value": "25000.00"}, format="json").status_code == 201
    reply = client.post(url(loan), {"value": "5000.01"}, format="json")
    assert reply.status_code == 409
    body = reply.json()
    assert body["code"] == "release_exceeds_paid"
    assert body["releasable_value"] == "30000.00"
    assert body["available_value"] == "5000.00"
    assert hold(loan).released_value == D("25000.00")
    refused = Release.objects.get(pk=body["release"])
    assert (refused.status, refused.reason) == (ReleaseStatus.REFUSED, "release_exceeds_paid")
    listed = client.get(url(loan)).json()["results"]
    assert [r["status"] for r in listed] == ["refused", "authorised"]


def test_integration_key_releases_lines_at_the_order_prices(loan: Any, enterprise: Any) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {enterprise.plain_api_key}")
    lines = [{"sku": "TV-55", "quantity": "5"}, {"sku": "TV-65", "quantity": "2"}]
    reply = client.post(url(loan), {"lines": lines}, format="json")
    assert reply.status_code == 201, reply.content
    assert reply.json()["release"]["value"] == "25000.00"  # 5 x 3000 + 2 x 5000
    assert reply.json()["release"]["requested_by_kind"] == "enterprise"
    # Only 6 TV-65 are left to release: asking for 7 is refused and writes nothing.
    before = Release.objects.count()
    reply = client.post(url(loan), {"lines": [{"sku": "TV-65", "quantity": "7"}]}, format="json")
    assert reply.status_code == 422
    assert "6" in reply.json()["fields"]["lines"][0]
    assert Release.objects.count() == before


def test_ledger_check_reconciles_each_skus_release_with_the_releases(
    loan: Any, enterprise_admin: Any
) -> None:
    lines = [{"sku": "TV-55", "quantity": "2"}, {"sku": "TV-65", "quantity": "1.5"}]
    reply = client_for(enterprise_admin).post(url(loan), {"lines": lines}, format="json")
    assert reply.status_code == 201, reply.content
    assert reply.json()["release"]["value"] == "13500.00"
    assert book_check() == []
    GoodsHoldLine.objects.filter(hold__loan=loan, sku="TV-65").update(released_quantity=D("2"))
    found = {(d.check, str(d.expected), str(d.actual)) for d in book_check()}
    assert found == {("hold_line_released", "1.5000", "2.0000")}


def test_agent_asks_for_a_pick_up(loan: Any, agent_client: APIClient) -> None:
    reply = agent_client.post(url(loan), {"value": "1000.00"}, format="json")
    assert reply.status_code == 201
    assert reply.json()["release"]["requested_by_kind"] == "agent"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"value": "1000.00", "lines": [{"sku": "TV-55", "quantity": "1"}]},
        {"value": 1000.0},
        {"value": "-5.00"},
        {"value": "0"},
        {"value": "1.001"},
        {"value": "abc"},
        {"lines": []},
        {"lines": [{"sku": "NOPE", "quantity": "1"}]},
        {"lines": [{"sku": "TV-55", "quantity": "0"}]},
        {"lines": [{"sku": "TV-55", "quantity": 1.5}]},
        {"lines": "TV-55"},
    ],
)
def test_bad_requests_are_refused_and_write_nothing(
    loan: Any, enterprise_admin: Any, body: dict[str, Any]
) -> None:
    reply = client_for(enterprise_admin).post(url(loan), body, format="json")
    assert reply.status_code == 422, reply.content
    assert reply.json()["code"] == "validation_error"
    assert not Release.objects.exists()
    assert hold(loan).released_value == 0


def test_who_may_ask(loan: Any, line: Any, enterprise_admin: Any) -> None:
    staff = client_for(UserFactory(role="risk_reviewer"))
    assert staff.get(url(loan)).status_code == 200
    assert staff.post(url(loan), {"value": "1.00"}, format="json").status_code == 403
    stranger = UserFactory(role="enterprise_admin", enterprise=EnterpriseFactory())
    other = client_for(stranger)  # another enterprise: 404
    assert other.post(url(loan), {"value": "1.00"}, format="json").status_code == 404
    assert APIClient().get(url(loan)).status_code == 401
    plain = money_line(line.agent, line.program.enterprise)
    ordinary = active_loan(plain, principal="5000.00", value_date=VALUE_DATE)
    reply = client_for(enterprise_admin).post(
        f"/api/v1/loans/{ordinary.pk}/releases/", {"value": "1.00"}, format="json"
    )
    assert reply.status_code == 409
    assert reply.json()["code"] == "no_goods_hold"
    assert (
        client_for(enterprise_admin).get(f"/api/v1/loans/{ordinary.pk}/").json()["releasable_value"]
        is None
    )
    assert not Release.objects.exists()


def repay(loan: Any, amount: str, reference: str) -> None:
    repayment_record(
        loan=loan,
        amount=D(amount),
        value_date=VALUE_DATE,
        reference=reference,
        source="api",
        actor=None,
        today=VALUE_DATE,
    )


def test_each_repayment_raises_what_may_be_released(loan: Any, enterprise_admin: Any) -> None:
    client = client_for(enterprise_admin)
    assert client.post(url(loan), {"value": "30000.00"}, format="json").status_code == 201
    assert client.post(url(loan), {"value": "0.01"}, format="json").status_code == 409
    repay(loan, "20000.00", "RP-1")
    assert hold(loan).releasable_value == D("50000.00")
    assert client.post(url(loan), {"value": "20000.00"}, format="json").status_code == 201
    repay(loan, "50000.00", "RP-2")
    held = hold(loan)
    assert (held.releasable_value, held.released_value) == (D("100000.00"), D("50000.00"))
    assert client.post(url(loan), {"value": "50000.00"}, format="json").status_code == 201
    assert hold(loan).status == HoldStatus.RELEASED
    books_balance()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_releases_authorise_exactly_what_was_paid_for(
    agent: Any, enterprise: Any
) -> None:
    line = money_line(agent, enterprise)
    # Margin 20 % of 85,000 = 17,000 releasable; 50 requests of 1,000.00: exactly 17 fit.
    loan = tripartite_loan(
        line, order_value="85000.00", value_date=VALUE_DATE, margin_ratio=D("0.2000")
    )
    assert hold(loan).releasable_value == D("17000.00")
    admin = UserFactory(role="enterprise_admin", enterprise=enterprise)
    client_for(admin)  # the token, before the race

    def ask() -> Any:
        return client_for(admin).post(url(loan), {"value": "1000.00"}, format="json")

    replies = run_at_once([ask] * 50, floor=20)
    assert server_errors(replies) == []
    statuses = sorted(r.status_code for r in replies)  # type: ignore[union-attr]
    assert statuses.count(201) == 17
    assert statuses.count(409) == 33
    refused = [r.json() for r in replies if r.status_code == 409]  # type: ignore[union-attr]
    assert {r["code"] for r in refused} == {"release_exceeds_paid"}
    assert {r["available_value"] for r in refused} == {"0.00"}
    held = hold(loan)
    assert held.released_value == held.releasable_value == D("17000.00")
    assert Release.objects.filter(status=ReleaseStatus.AUTHORISED).count() == 17
    assert Release.objects.filter(status=ReleaseStatus.REFUSED).count() == 33
