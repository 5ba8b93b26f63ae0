"""Release breaches: the order feed reports goods shipped beyond what was released.

The breach is recorded after ingestion (every channel goes through the same follow-up), the
agent's next finance requests under the tripartite program are referred
(``release_breach_open``) while it is open, and risk
staff resolve it with a note (audited); a repeat of the same report raises nothing new.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from rest_framework.test import APIClient

from lending.models import AuditLog, BreachStatus, GoodsHold, Loan, ReleaseBreach
from lending.services.breaches import release_breach_resolve
from tests.conftest import client_for
from tests.integrations.feed_helpers import post_bulk
from tests.lending.active_loans import money_line
from tests.lending.conftest import finance
from tests.lending.tripartite_makers import tripartite_loan
from tests.lending.tripartite_world import world as tripartite_world
from tests.orders.factories import OrderFactory, UserFactory, order_payload

pytestmark = pytest.mark.django_db
VALUE_DATE = dt.date(2026, 11, 2)


def report(enterprise: Any, loan: Any, status: str, version: int) -> Any:
    payload = order_payload(
        loan.agent.code,
        external_id=loan.order.external_id,
        amount=str(loan.order.amount),
        version=version,
        status=status,
        order_date=loan.order.order_date.isoformat(),
    )
    return post_bulk(APIClient(), enterprise.plain_api_key, {"orders": [payload]})


@pytest.fixture
def loan(agent: Any, enterprise: Any) -> Any:
    return tripartite_loan(
        money_line(agent, enterprise), order_value="100000.00", value_date=VALUE_DATE
    )


@pytest.fixture
def tri(enterprise: Any) -> Any:
    """A tripartite program whose agent has lodged 100,000 of margin."""
    return tripartite_world(enterprise, margin="100000.00")


def test_breach_on_a_financed_order_refers_the_agents_next_request_until_resolved(
    tri: Any, enterprise: Any
) -> None:
    agent_client = client_for(UserFactory(role="agent", agent=tri.agent))
    first = OrderFactory(agent=tri.agent, enterprise=enterprise, amount="50000.00")
    assert finance(agent_client, first.pk, key="k-1").json()["decision"]["outcome"] == "approved"
    loan = Loan.objects.get(order=first)
    assert GoodsHold.objects.filter(loan=loan).exists()
    assert report(enterprise, loan, "shipped", 2).status_code == 200
    breach = ReleaseBreach.objects.get(order=first)
    second = OrderFactory(agent=tri.agent, enterprise=enterprise, amount="20000.00")
    decided = finance(agent_client, second.pk, key="k-2").json()
    assert decided["decision"]["outcome"] == "in_review"
    assert [r["code"] for r in decided["decision"]["reasons"]] == ["release_breach_open"]
    risk = UserFactory(role="risk_reviewer")
    release_breach_resolve(breach_id=breach.pk, actor=risk, note="Agreed with the enterprise.")
    third = OrderFactory(agent=tri.agent, enterprise=enterprise, amount="20000.00")
    assert finance(agent_client, third.pk, key="k-3").json()["decision"]["outcome"] == "approved"


def test_shipped_beyond_released_is_a_breach_risk_staff_resolve(loan: Any, enterprise: Any) -> None:
    assert report(enterprise, loan, "confirmed", 2).status_code == 200
    assert not ReleaseBreach.objects.exists()
    reply = report(enterprise, loan, "shipped", 3)
    assert reply.status_code == 200, reply.content
    breach = ReleaseBreach.objects.get()
    assert (breach.status, breach.order_status) == (BreachStatus.OPEN, "shipped")
    assert (str(breach.reported_value), str(breach.released_value)) == ("100000.00", "0.00")

    # The enterprise sees it; risk staff resolve it with a note.
    admin = client_for(UserFactory(role="enterprise_admin", enterprise=enterprise))
    listed = admin.get("/api/v1/breaches/?status=open").json()["results"]
    assert [b["id"] for b in listed] == [breach.pk]
    risk = client_for(UserFactory(role="risk_reviewer"))
    url = f"/api/v1/breaches/{breach.pk}/resolve/"
    assert risk.post(url, {"note": "  "}, format="json").status_code == 422
    assert admin.post(url, {"note": "ok"}, format="json").status_code == 403
    reply = risk.post(url, {"note": "Shipped to the agent's own warehouse."}, format="json")
    assert reply.status_code == 200, reply.content
    assert reply.json()["status"] == "resolved"
    assert risk.post(url, {"note": "again"}, format="json").status_code == 409
    assert AuditLog.objects.filter(action="release_breach_resolved").count() == 1

    # The same report again raises nothing new.
    assert report(enterprise, loan, "delivered", 4).status_code == 200
    assert ReleaseBreach.objects.filter(status=BreachStatus.OPEN).count() == 0


def test_goods_released_in_full_ship_without_a_breach(
    loan: Any, enterprise: Any, enterprise_admin: Any
) -> None:
    GoodsHold.objects.filter(loan=loan).update(releasable_value=loan.order.amount)
    client = client_for(enterprise_admin)
    url = f"/api/v1/loans/{loan.pk}/releases/"
    assert client.post(url, {"value": "100000.00"}, format="json").status_code == 201
    assert report(enterprise, loan, "delivered", 2).status_code == 200
    assert not ReleaseBreach.objects.exists()
