"""Many banks per core enterprise: one offer per program in the quote, the agent chooses.

The enterprise has a program with bank A (the factories' default bank) and one with bank B, at
another rate and tenor, referring larger loans to review; the agent holds a line in both. The
quote shows both offers, each with its own terms and decision; ``finance`` takes the chosen
program's id; a program the agent has no line in, or another enterprise's, is a 404 with nothing
written. With one program the quote keeps its single shape.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from lending.models import CreditLine, Loan, Program
from lending.services.quotes import loan_quotes
from orders.models import SalesOrder
from tests.conftest import client_for
from tests.lending.conftest import finance
from tests.lending.factories import BankFactory, CreditLineFactory, ProgramFactory
from tests.orders.factories import AgentFactory, EnterpriseFactory, OrderFactory, UserFactory

pytestmark = pytest.mark.django_db

SINGLE_SHAPE = {
    "order",
    "program",
    "currency",
    "principal",
    "advance_rate",
    "annual_rate",
    "day_count",
    "tenor_days",
    "value_date",
    "due_date",
    "interest_to_maturity",
    "total_repayable",
    "eligible",
    "expected_outcome",
    "reasons",
    "margin_required",
    "margin_free",
}


@pytest.fixture
def two_banks(enterprise: Any, agent: Any) -> dict[str, Any]:
    bank_b = BankFactory(code="BANK-B", name="Second Commercial Bank")
    a = ProgramFactory(enterprise=enterprise)
    b = ProgramFactory(
        enterprise=enterprise,
        bank=bank_b,
        annual_rate=Decimal("0.048000"),
        tenor_days=120,
        advance_rate=Decimal("0.7000"),
        auto_approve_limit=Decimal("1000.00"),  # bank B reviews this order's loan
    )
    return {
        "a": a,
        "b": b,
        "line_a": CreditLineFactory(agent=agent, program=a),
        "line_b": CreditLineFactory(agent=agent, program=b),
    }


def _quote(client: Any, order: SalesOrder) -> dict[str, Any]:
    response = client.post(f"/api/v1/orders/{order.pk}/quote/")
    assert response.status_code == 200, response.content
    return dict(response.json())


def test_one_program_keeps_the_single_shape(agent_client, order, line):
    assert set(_quote(agent_client, order)) == SINGLE_SHAPE


def test_the_quote_shows_one_offer_per_program_each_with_its_terms_and_decision(
    agent_client, order, two_banks
):
    body = _quote(agent_client, order)
    a, b = two_banks["a"], two_banks["b"]
    offers = body["offers"]
    assert [o["program"] for o in offers] == [a.pk, b.pk]
    assert [o["bank"]["code"] for o in offers] == ["BANK-1", "BANK-B"]
    assert [o["annual_rate"] for o in offers] == ["0.054000", "0.048000"]
    assert [o["principal"] for o in offers] == ["8000.00", "7000.00"]
    assert [o["tenor_days"] for o in offers] == [90, 120]
    assert offers[0]["due_date"] != offers[1]["due_date"]
    assert [o["expected_outcome"] for o in offers] == ["approved", "in_review"]
    # The top level is the default choice, the first offer, in the single shape's fields.
    assert set(body) == SINGLE_SHAPE | {"offers"}
    assert {k: body[k] for k in SINGLE_SHAPE} == {k: offers[0][k] for k in SINGLE_SHAPE}
    assert Loan.objects.count() == 0


def test_finance_takes_the_chosen_program(agent_client, order, two_banks):
    response = agent_client.post(
        f"/api/v1/orders/{order.pk}/finance/",
        {"program": two_banks["b"].pk},
        format="json",
        HTTP_IDEMPOTENCY_KEY="pick-b",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["decision"]["outcome"] == "in_review"
    loan = Loan.objects.get(pk=body["loan"]["id"])
    assert loan.program_id == two_banks["b"].pk and loan.principal == Decimal("7000.00")
    line_a = CreditLine.objects.get(pk=two_banks["line_a"].pk)
    line_b = CreditLine.objects.get(pk=two_banks["line_b"].pk)
    assert line_a.reserved == 0 and line_b.reserved == Decimal("7000.00")
    assert Program.objects.get(pk=two_banks["a"].pk).reserved == 0


def test_finance_without_a_program_takes_the_first_offer(agent_client, order, two_banks):
    response = finance(agent_client, order.pk)
    assert response.status_code == 201, response.content
    assert Loan.objects.get().program_id == two_banks["a"].pk


@pytest.mark.parametrize("whose", ["no_line", "other_enterprise", "missing", "huge"])
def test_a_program_not_offered_is_404_and_writes_nothing(agent_client, order, two_banks, whose):
    if whose == "no_line":
        program_id = ProgramFactory(enterprise=order.enterprise).pk
    elif whose == "other_enterprise":
        other = ProgramFactory(enterprise=EnterpriseFactory())
        CreditLineFactory(agent=order.agent, program=other)
        program_id = other.pk
    elif whose == "missing":
        program_id = 987654321
    else:
        program_id = 2**63
    response = agent_client.post(
        f"/api/v1/orders/{order.pk}/finance/",
        {"program": program_id},
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"bad-{whose}",
    )
    assert response.status_code == 404, response.content
    assert response.json()["code"] == "program_not_offered"
    assert Loan.objects.count() == 0
    assert set(CreditLine.objects.values_list("reserved", flat=True)) == {Decimal("0.00")}
    assert set(Program.objects.values_list("reserved", flat=True)) == {Decimal("0.00")}


@pytest.mark.parametrize("value", ["b", -3, 1.5, True, {"id": 1}, ""])
def test_a_program_that_is_not_an_id_is_422(agent_client, order, two_banks, value):
    response = agent_client.post(
        f"/api/v1/orders/{order.pk}/finance/",
        {"program": value},
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"bad-{value!r}",
    )
    assert response.status_code == 422, response.content
    assert "program" in response.json()["fields"]
    assert Loan.objects.count() == 0


def test_an_agent_with_a_line_only_at_the_second_bank_gets_that_banks_offer(enterprise, order):
    ProgramFactory(enterprise=enterprise)  # bank A: no line for this agent
    b = ProgramFactory(enterprise=enterprise, bank=BankFactory(code="BANK-B", name="B"))
    CreditLineFactory(agent=order.agent, program=b)
    client = client_for(UserFactory(role="agent", agent=order.agent))
    body = _quote(client, order)
    assert body["program"] == b.pk and "offers" not in body
    assert loan_quotes(orders=[order])[order.pk].program == b
    assert finance(client, order.pk).status_code == 201
    assert Loan.objects.get().program_id == b.pk


def test_the_orders_page_quotes_agree_with_the_default_offer(agent, enterprise, two_banks):
    orders = [OrderFactory(agent=agent, enterprise=enterprise) for _ in range(3)]
    rows = SalesOrder.objects.filter(pk__in=[o.pk for o in orders]).select_related("agent")
    quotes = loan_quotes(orders=list(rows))
    assert {q.program.pk for q in quotes.values()} == {two_banks["a"].pk}


def test_another_agent_of_the_enterprise_sees_only_its_own_lines_offers(enterprise, two_banks):
    other = AgentFactory(enterprises=[enterprise])
    CreditLineFactory(agent=other, program=two_banks["b"])
    order = OrderFactory(agent=other, enterprise=enterprise)
    body = _quote(client_for(UserFactory(role="agent", agent=other)), order)
    assert body["program"] == two_banks["b"].pk and "offers" not in body
