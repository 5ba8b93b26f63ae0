"""Real concurrency on PostgreSQL: many finance clicks at once, separate connections.

Each thread is its own client and its own database connection; a barrier releases them together.
"""

from __future__ import annotations

import threading
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from lending.models import CreditLine, Loan
from tests.conftest import client_for
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.orders.factories import AgentFactory, OrderFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ORDER = Decimal("10000.00")  # principal 8,000.00 at 80%


def _click_all(requests: list[tuple[Any, int, str]]) -> list[Any]:
    """Send every (user, order id, key) at once; return the responses."""
    barrier = threading.Barrier(len(requests), timeout=60)
    responses: list[Any] = [None] * len(requests)
    clients = {user.pk: client_for(user) for user, _, _ in requests}

    def click(i: int, user: Any, order_id: int, key: str) -> None:
        client = clients[user.pk]
        barrier.wait()
        try:
            responses[i] = client.post(
                f"/api/v1/orders/{order_id}/finance/", {}, format="json", HTTP_IDEMPOTENCY_KEY=key
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=click, args=(i, *r)) for i, r in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return responses


def _outcomes(responses: list[Any]) -> Counter[str]:
    assert all(r.status_code == 201 for r in responses), [
        (r.status_code, r.content[:200]) for r in responses if r.status_code != 201
    ]
    return Counter(r.json()["decision"]["outcome"] for r in responses)


def test_hundred_clicks_on_a_line_that_fits_37(enterprise):
    program = ProgramFactory(enterprise=enterprise)
    agent = AgentFactory(enterprises=[enterprise])
    line = CreditLineFactory(agent=agent, program=program, limit=Decimal("8000.00") * 37)
    user = UserFactory(role="agent", agent=agent)
    orders = [OrderFactory(agent=agent, enterprise=enterprise, amount=ORDER) for _ in range(100)]
    responses = _click_all([(user, o.id, f"k-{o.id}") for o in orders])
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
    program = ProgramFactory(enterprise=enterprise, limit=Decimal("8000.00") * 37)
    requests = []
    for _ in range(20):
        agent = AgentFactory(enterprises=[enterprise])
        CreditLineFactory(agent=agent, program=program, limit=Decimal("1000000.00"))
        user = UserFactory(role="agent", agent=agent)
        for _ in range(5):
            order = OrderFactory(agent=agent, enterprise=enterprise, amount=ORDER)
            requests.append((user, order.id, f"k-{order.id}"))
    responses = _click_all(requests)
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
    responses = _click_all([(user, order.id, f"key-{i}") for i in range(50)])
    codes = Counter(r.status_code for r in responses)
    assert codes == {201: 1, 409: 49}
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {
        "order_already_financed"
    }
    assert Loan.objects.count() == 1
