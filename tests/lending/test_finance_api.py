"""Quote and finance through the API: contract shapes, idempotency, 404/409, reservations."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

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


# --- what an agent is told about a referral (issue 18, item 7) ---------------------------------


def _referred_quote_and_finance(agent_client: Any, order: Any) -> tuple[dict, dict]:
    quote = agent_client.post(f"/api/v1/orders/{order.id}/quote/")
    assert quote.status_code == 200, quote.content
    reply = finance(agent_client, order.id, key="k-referred")
    assert reply.status_code == 201, reply.content
    return quote.json(), reply.json()


@pytest.mark.parametrize(
    ("setting", "code", "secret"),
    [
        ({"auto_approve_limit": Decimal("7654.32")}, "above_auto_approve_limit", "7654.32"),
        ({"auto_approve_grade": "A"}, "grade_below_auto_approve", "Grade"),
        (
            {"refer_rules": ["order_too_old"], "max_order_age_days": 7},
            "program_rule_refer",
            "order_too_old",
        ),
    ],
    ids=["limit", "grade", "program-rule"],
)
def test_referral_reasons_tell_agents_what_happens_not_the_banks_thresholds(
    agent_client, agent, enterprise, line, program, setting, code, secret
):
    for name, value in setting.items():
        setattr(program, name, value)
    program.save()
    order = OrderFactory(
        agent=agent,
        enterprise=enterprise,
        amount=Decimal("10000.00"),
        order_date=dt.date.today() - dt.timedelta(days=30),
    )
    quote, reply = _referred_quote_and_finance(agent_client, order)
    expected = [{"code": code, "detail": "Needs a review by the bank."}]
    assert quote["expected_outcome"] == "in_review" and quote["reasons"] == expected
    assert reply["decision"] == {"outcome": "in_review", "reasons": expected}
    for text in (str(quote), str(reply)):
        assert secret not in text
    # The bank keeps the full detail, and its staff read it.
    stored = Decision.objects.get(loan_id=reply["loan"]["id"]).reasons
    assert [r["code"] for r in stored] == [code] and secret in stored[0]["detail"]
    reviewer = UserFactory(role="risk_reviewer")
    staff = client_for(reviewer).get("/api/v1/reviews/").json()["results"][0]["decision"]
    assert secret in staff["reasons"][0]["detail"]


def test_a_full_program_is_not_measured_for_agents(agent_client, order, line, program):
    program.limit = Decimal("7000.00")  # principal 8,000
    program.save()
    quote = agent_client.post(f"/api/v1/orders/{order.id}/quote/").json()
    assert quote["reasons"] == [
        {
            "code": "insufficient_program_limit",
            "detail": "The program has no room left for this loan right now.",
        }
    ]
    assert "7000" not in str(quote)
