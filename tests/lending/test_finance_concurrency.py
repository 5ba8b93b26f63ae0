"""Real concurrency on PostgreSQL: many finance clicks at once, separate connections.

Each thread is its own client and its own database connection; a barrier releases them together.
One thread per click where the server has the connections for it, else the clicks are spread
over as many threads as it has (``race_clients``), never fewer than the test's floor.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from lending.models import CreditLine, Loan
from tests.conftest import client_for
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.orders.factories import AgentFactory, OrderFactory, UserFactory
from tests.reliability.race_helpers import failures, run_at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ORDER = Decimal("10000.00")  # principal 8,000.00 at 80%
FITS = 37  # loans of 8,000.00 that the limit holds in the two limit races
# More clients at once than loans fit: one wave alone could lend past the limit if it were not
# guarded.
LIMIT_RACE_FLOOR = FITS + 1


def _click_all(requests: list[tuple[Any, int, str]], *, floor: int | None = None) -> list[Any]:
    """Send every (user, order id, key) at once (at least ``floor`` at a time); the responses."""
    clients = {user.pk: client_for(user) for user, _, _ in requests}

    def click(user: Any, order_id: int, key: str) -> Any:
        return lambda: clients[user.pk].post(
            f"/api/v1/orders/{order_id}/finance/", {}, format="json", HTTP_IDEMPOTENCY_KEY=key
        )

    responses = run_at_once([click(*request) for request in requests], floor=floor)
    assert failures(responses) == []
    return responses


def _outcomes(responses: list[Any]) -> Counter[str]:
    assert all(r.status_code == 201 for r in responses), [
        (r.status_code, r.content[:200]) for r in responses if r.status_code != 201
    ]
    return Counter(r.json()["decision"]["outcome"] for r in responses)


def test_hundred_clicks_on_a_line_that_fits_37(enterprise):
    program = ProgramFactory(enterprise=enterprise)
    agent = AgentFactory(enterprises=[enterprise])
    line = CreditLineFactory(agent=agent, program=program, limit=Decimal("8000.00") * FITS)
    user = UserFactory(role="agent", agent=agent)
    orders = [OrderFactory(agent=agent, enterprise=enterprise, amount=ORDER) for _ in range(100)]
    responses = _click_all([(user, o.id, f"k-{o.id}") for o in orders], floor=LIMIT_RACE_FLOOR)
    assert _outcomes(responses) == {"approved": 37, "declined": 63}
    for r in responses:
        if r.json()["decision"]["outcome"] == "declined":
            assert [x["code"] for x in r.json()["decision"]["reasons"]] == [
                "insufficient_credit_line"
            ]
    line.refresh_from_db()
    # Approved loans are paid out after commit (eager here): reserved turns outstanding.
    assert line.available == 0
    assert line.reserved + line.outstanding_principal == Decimal("8000.00") * 37
    assert Loan.objects.filter(status__in=["disbursing", "active"]).count() == 37


def test_program_limit_shared_by_twenty_agents(enterprise):
    program = ProgramFactory(enterprise=enterprise, limit=Decimal("8000.00") * FITS)
    requests = []
    for _ in range(20):
        agent = AgentFactory(enterprises=[enterprise])
        CreditLineFactory(agent=agent, program=program, limit=Decimal("1000000.00"))
        user = UserFactory(role="agent", agent=agent)
        for _ in range(5):
            order = OrderFactory(agent=agent, enterprise=enterprise, amount=ORDER)
            requests.append((user, order.id, f"k-{order.id}"))
    responses = _click_all(requests, floor=LIMIT_RACE_FLOOR)
    assert _outcomes(responses) == {"approved": 37, "declined": 63}
    declined_codes = {
        x["code"]
        for r in responses
        if r.json()["decision"]["outcome"] == "declined"
        for x in r.json()["decision"]["reasons"]
    }
    assert declined_codes == {"insufficient_program_limit"}
    program.refresh_from_db()
    assert program.available == 0
    lines = CreditLine.objects.all()
    assert sum(line.reserved for line in lines) == program.reserved
    assert sum(line.outstanding_principal for line in lines) == program.outstanding_principal


def test_two_clicks_with_the_same_key_make_one_loan_and_identical_replies(enterprise):
    program = ProgramFactory(enterprise=enterprise)
    agent = AgentFactory(enterprises=[enterprise])
    CreditLineFactory(agent=agent, program=program)
    user = UserFactory(role="agent", agent=agent)
    order = OrderFactory(agent=agent, enterprise=enterprise)
    responses = _click_all([(user, order.id, "same-key"), (user, order.id, "same-key")])
    assert [r.status_code for r in responses] == [201, 201]
    assert responses[0].json() == responses[1].json()
    assert Loan.objects.count() == 1
    program.refresh_from_db()
    assert program.reserved + program.outstanding_principal == Decimal("8000.00")


def test_fifty_clicks_on_one_order_with_different_keys_make_one_loan(enterprise):
    program = ProgramFactory(enterprise=enterprise)
    agent = AgentFactory(enterprises=[enterprise])
    CreditLineFactory(agent=agent, program=program)
    user = UserFactory(role="agent", agent=agent)
    order = OrderFactory(agent=agent, enterprise=enterprise)
    # Ten clicks at a time still race for the one order; fifty where the server allows.
    responses = _click_all([(user, order.id, f"key-{i}") for i in range(50)], floor=10)
    codes = Counter(r.status_code for r in responses)
    assert codes == {201: 1, 409: 49}
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {
        "order_already_financed"
    }
    assert Loan.objects.count() == 1
