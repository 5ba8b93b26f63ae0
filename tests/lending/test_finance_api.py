"""Quote and finance through the API: contract shapes, idempotency, 404/409, reservations."""

from __future__ import annotations

from decimal import Decimal

import pytest

from lending.models import CreditLine, Decision, Loan, Program
from tests.conftest import client_for
from tests.lending.conftest import finance
from tests.orders.factories import AgentFactory, OrderFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_quote_gives_contract_fields_and_changes_nothing(agent_client, order, line):
    response = agent_client.post(f"/api/v1/orders/{order.id}/quote/")
    assert response.status_code == 200, response.content
    body = response.json()
    for field in (
        "principal",
        "advance_rate",
        "annual_rate",
        "day_count",
        "tenor_days",
        "due_date",
        "interest_to_maturity",
        "total_repayable",
    ):
        assert field in body
    assert body["principal"] == "8000.00"
    assert Decimal(body["total_repayable"]) == Decimal("8000.00") + Decimal(
        body["interest_to_maturity"]
    )
    assert body["eligible"] is True and body["expected_outcome"] == "approved"
    assert Loan.objects.count() == 0
    line.refresh_from_db()
    assert line.reserved == 0


def test_finance_approves_and_reserves(agent_client, order, line, program):
    response = finance(agent_client, order.id)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["decision"] == {"outcome": "approved", "reasons": []}
    loan = body["loan"]
    assert loan["status"] == "disbursing" and loan["principal"] == "8000.00"
    for field in (
        "id",
        "order",
        "agent",
        "status",
        "principal",
        "outstanding_principal",
        "accrued_interest",
        "accrued_penalty",
        "due_date",
        "days_past_due",
        "disbursed_at",
        "schedule",
    ):
        assert field in loan
    line.refresh_from_db()
    program.refresh_from_db()
    assert line.reserved == Decimal("8000.00") and line.available == Decimal("992000.00")
    assert program.reserved == Decimal("8000.00")
    decision = Decision.objects.get(loan_id=loan["id"])
    assert decision.engine_version and decision.inputs["principal"] == "8000.00"
    assert {r["rule"] for r in decision.rules} >= {"line_headroom", "program_headroom"}


def test_same_key_same_body_replays_first_reply(agent_client, order, line):
    first = finance(agent_client, order.id, key="same")
    second = finance(agent_client, order.id, key="same")
    assert second.status_code == first.status_code == 201
    assert second.json() == first.json()
    assert Loan.objects.count() == 1
    assert CreditLine.objects.get(pk=line.pk).reserved == Decimal("8000.00")


def test_same_key_other_order_is_422(agent_client, order, line, agent, enterprise):
    other = OrderFactory(agent=agent, enterprise=enterprise)
    finance(agent_client, order.id, key="k")
    response = finance(agent_client, other.id, key="k")
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert Loan.objects.count() == 1


def test_second_finance_of_same_order_is_409(agent_client, order, line):
    finance(agent_client, order.id, key="a")
    response = finance(agent_client, order.id, key="b")
    assert response.status_code == 409
    assert response.json()["code"] == "order_already_financed"
    assert Loan.objects.count() == 1


def test_missing_idempotency_key_is_422(agent_client, order, line):
    response = agent_client.post(f"/api/v1/orders/{order.id}/finance/", {}, format="json")
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_required"


def test_another_agents_order_is_404_for_quote_and_finance(agent_client, enterprise, line):
    stranger = AgentFactory(enterprises=[enterprise])
    theirs = OrderFactory(agent=stranger, enterprise=enterprise)
    assert agent_client.post(f"/api/v1/orders/{theirs.id}/quote/").status_code == 404
    assert finance(agent_client, theirs.id).status_code == 404
    assert Loan.objects.count() == 0


@pytest.mark.parametrize(
    "role", ["enterprise_admin", "risk_reviewer", "risk_approver", "ops_admin"]
)
def test_only_agents_may_finance(role, order, line, enterprise):
    user = UserFactory(role=role, enterprise=enterprise if role == "enterprise_admin" else None)
    assert finance(client_for(user), order.id).status_code == 403
    assert Loan.objects.count() == 0


def test_declined_request_reserves_nothing_and_explains(agent_client, agent, enterprise, line):
    cancelled = OrderFactory(agent=agent, enterprise=enterprise, status="cancelled")
    body = finance(agent_client, cancelled.id).json()
    assert body["decision"]["outcome"] == "declined"
    assert [r["code"] for r in body["decision"]["reasons"]] == ["order_cancelled"]
    assert body["loan"]["status"] == "declined"
    assert CreditLine.objects.get(pk=line.pk).reserved == 0
    # A declined order may be tried again later (with another key).
    assert finance(agent_client, cancelled.id, key="again").status_code == 201


def test_financeable_filter_lists_only_orders_on_offer(agent_client, agent, enterprise, line):
    open_order = OrderFactory(agent=agent, enterprise=enterprise)
    financed = OrderFactory(agent=agent, enterprise=enterprise)
    OrderFactory(agent=agent, enterprise=enterprise, status="delivered")
    finance(agent_client, financed.id)
    ids = [o["id"] for o in agent_client.get("/api/v1/orders/?financeable=true").json()["results"]]
    assert ids == [open_order.id]


def test_loan_list_detail_and_404_for_others(agent_client, order, line, enterprise):
    loan_id = finance(agent_client, order.id).json()["loan"]["id"]
    assert agent_client.get("/api/v1/loans/").json()["count"] == 1
    detail = agent_client.get(f"/api/v1/loans/{loan_id}/").json()
    assert detail["decision"]["outcome"] == "approved"
    assert detail["schedule"][0]["principal"] == "8000.00"
    stranger = UserFactory(role="agent", agent=AgentFactory(enterprises=[enterprise]))
    assert client_for(stranger).get(f"/api/v1/loans/{loan_id}/").status_code == 404
    assert client_for(stranger).get(f"/api/v1/loans/{loan_id}/ledger/").status_code == 404
    assert client_for(stranger).get("/api/v1/loans/").json()["count"] == 0


def test_program_row_never_exceeds_limit(agent_client, order, line, program):
    Program.objects.filter(pk=program.pk).update(limit=Decimal("7999.99"))
    body = finance(agent_client, order.id).json()
    assert body["decision"]["outcome"] == "declined"
    assert [r["code"] for r in body["decision"]["reasons"]] == ["insufficient_program_limit"]
