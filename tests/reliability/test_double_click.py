"""Scenario 2, double click: 50 concurrent finance requests for one order make one loan.

Two halves, each 50 threads (at least 10 where the server has fewer connections free) with their
own PostgreSQL connections released by a barrier, through the HTTP API:

* the same ``Idempotency-Key`` 50 times (a client retrying a click): one loan, and every reply,
  the winner's and the 49 replays, is the same status and the same bytes; a late 51st retry too;
* 50 different keys (50 separate clicks): the one that wins is 201 ``approved``, the other 49
  are a clean 409 ``order_already_financed``; each of those keys, retried later, replays its
  own reply byte for byte.

``tests/lending/test_finance_concurrency.py`` covers 2 clicks with one key and 50 with different
keys by status; this is the 50-click, byte-level version of both.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from lending.models import Disbursement, IdempotencyRecord, Loan, Program
from tests.conftest import client_for
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.orders.factories import AgentFactory, OrderFactory, UserFactory

from .race_helpers import clean_refusal, run_at_once, server_errors

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CLICKS = 50
# Where the server has fewer connections free, the clicks go ten or more at a time: still many
# racing for the one order and the one key.
CLICKS_FLOOR = 10
PRINCIPAL = Decimal("8000.00")  # 80% of the 10,000.00 order


@pytest.fixture
def clicker(enterprise: Any) -> tuple[Any, Any]:
    program = ProgramFactory(enterprise=enterprise)
    agent = AgentFactory(enterprises=[enterprise])
    CreditLineFactory(agent=agent, program=program)
    user = UserFactory(role="agent", agent=agent)
    order = OrderFactory(agent=agent, enterprise=enterprise, amount=Decimal("10000.00"))
    return user, order


def _finance(user: Any, order_id: int, key: str) -> Any:
    client = client_for(user)

    def call() -> Any:
        return client.post(
            f"/api/v1/orders/{order_id}/finance/", {}, format="json", HTTP_IDEMPOTENCY_KEY=key
        )

    return call


def _one_loan_paid_once(order: Any) -> None:
    loan = Loan.objects.get(order=order)
    assert loan.principal == PRINCIPAL
    assert Disbursement.objects.filter(loan__order=order).count() == 1
    program = Program.objects.get(pk=loan.program_id)
    assert program.reserved + program.outstanding_principal == PRINCIPAL


def test_fifty_clicks_with_one_key_make_one_loan_and_byte_identical_replies(clicker):
    user, order = clicker
    responses = run_at_once(
        [_finance(user, order.pk, "one-key") for _ in range(CLICKS)], floor=CLICKS_FLOOR
    )
    assert server_errors(responses) == []
    assert Counter(r.status_code for r in responses) == {201: CLICKS}
    assert len({r.content for r in responses}) == 1, {r.content for r in responses}
    assert responses[0].json()["decision"]["outcome"] == "approved"
    late = _finance(user, order.pk, "one-key")()
    assert (late.status_code, late.content) == (201, responses[0].content)
    _one_loan_paid_once(order)
    assert IdempotencyRecord.objects.filter(user=user, key="one-key").count() == 1


def test_fifty_clicks_with_fifty_keys_make_one_loan_and_forty_nine_clean_409s(clicker):
    user, order = clicker
    keys = [f"click-{i}" for i in range(CLICKS)]
    responses = run_at_once([_finance(user, order.pk, key) for key in keys], floor=CLICKS_FLOOR)
    assert server_errors(responses) == []
    assert Counter(r.status_code for r in responses) == {201: 1, 409: CLICKS - 1}
    winner = next(r for r in responses if r.status_code == 201)
    assert winner.json()["decision"]["outcome"] == "approved"
    refused = [r for r in responses if r.status_code == 409]
    assert all(clean_refusal(r, (409,)) for r in refused)
    assert {r.json()["code"] for r in refused} == {"order_already_financed"}
    _one_loan_paid_once(order)
    # Each key keeps its own first reply: retried later, byte for byte the same.
    for key, first in zip(keys, responses, strict=True):
        again = _finance(user, order.pk, key)()
        assert (again.status_code, again.content) == (first.status_code, first.content), key
    assert Loan.objects.filter(order=order).count() == 1
