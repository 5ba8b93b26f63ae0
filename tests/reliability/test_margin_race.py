"""Concurrent finance clicks of one agent never commit more margin than it lodged.

40 orders of 10,000.00 under a tripartite program (30 % margin: 3,000.00 each) are clicked at
once through the HTTP API, each on its own thread and PostgreSQL connection.

* The agent lodged 17 x 3,000.00 + 2,999.99: exactly 17 financings are approved, the rest
  declined ``insufficient_margin``; 51,000.00 committed, 2,999.99 free.
* Five operations users ask to withdraw 1,000.00 each at the same moment as the clicks: every
  cent ends committed, withdrawn or free, none below zero, and no refusal (a declined click, a
  withdrawal refused ``insufficient_free_margin``) saw more free margin than is left at the end.

Both: no 5xx, no database error, no deadlock, and ``book_check`` finds nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal as D
from typing import Any
from unittest import mock

import pytest

from lending.models import LoanStatus, MarginAccount, MarginMovement, MarginWithdrawal
from lending.services.book_check import book_check
from tests.conftest import client_for
from tests.lending.tripartite_world import lodge, world
from tests.orders.factories import EnterpriseFactory, UserFactory

from .race_helpers import confirmed_orders, database_deadlocks, run_at_once, server_errors

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CLICKS = 40
FITS = 17
WITHDRAWALS = 5


def _post(client: Any, url: str, body: dict[str, Any], **headers: Any) -> Callable[[], Any]:
    return lambda: client.post(url, body, format="json", **headers)


def _clicks(w: Any) -> list[Callable[[], Any]]:
    orders = confirmed_orders(w.agent, w.program.enterprise, [D("10000.00")] * CLICKS)
    agent_user = UserFactory(role="agent", agent=w.agent)
    return [
        _post(
            client_for(agent_user),
            f"/api/v1/orders/{o.pk}/finance/",
            {},
            HTTP_IDEMPOTENCY_KEY=f"race-{o.pk}",
        )
        for o in orders
    ]


def _race(calls: list[Callable[[], Any]]) -> list[Any]:
    deadlocks_before = database_deadlocks()
    with (
        mock.patch("lending.services.disbursement.enqueue_on_commit"),
        mock.patch("lending.services.margin.enqueue_on_commit"),
    ):
        replies = run_at_once(calls, floor=20)
    assert server_errors(replies) == []
    time.sleep(1.0)  # closed backends flush their statistics asynchronously
    assert database_deadlocks() == deadlocks_before
    return replies


def _outcomes(replies: list[Any]) -> list[str]:
    outcomes = []
    for reply in replies:
        decision = reply.json()["decision"]
        outcomes.append(decision["outcome"])
        if decision["outcome"] != "approved":
            assert [x["code"] for x in decision["reasons"]] == ["insufficient_margin"], decision
    return outcomes


def test_concurrent_clicks_commit_exactly_the_margin_lodged() -> None:
    w = world(EnterpriseFactory())
    lodge(w.account, str(D("3000.00") * FITS + D("2999.99")), "DEP-RACE")
    outcomes = _outcomes(_race(_clicks(w)))
    assert outcomes.count("approved") == FITS, outcomes
    account = MarginAccount.objects.get(pk=w.account.pk)
    assert (account.free, account.committed) == (D("2999.99"), D("3000.00") * FITS)
    commits = MarginMovement.objects.filter(account=account, kind="commit")
    assert commits.count() == FITS
    assert {m.loan.status for m in commits.select_related("loan")} == {LoanStatus.DISBURSING}
    assert book_check() == []


def test_withdrawals_racing_the_clicks_never_take_committed_margin() -> None:
    w = world(EnterpriseFactory())
    lodged = D("3000.00") * FITS + D("1000.00")
    lodge(w.account, str(lodged), "DEP-RACE")
    url = f"/api/v1/agents/{w.agent.pk}/margin/withdrawals/"
    body = {"amount": "1000.00", "program": w.program.pk}
    withdrawals = [
        _post(client_for(UserFactory(role="ops_admin")), url, body) for _ in range(WITHDRAWALS)
    ]
    replies = _race([*_clicks(w), *withdrawals])
    approved = _outcomes(replies[:CLICKS]).count("approved")
    statuses = [r.status_code for r in replies[CLICKS:]]
    assert set(statuses) <= {201, 409}
    assert {r.json()["code"] for r in replies[CLICKS:] if r.status_code == 409} <= {
        "insufficient_free_margin"
    }
    withdrawn = statuses.count(201)
    account = MarginAccount.objects.get(pk=w.account.pk)
    # Every cent is accounted for: committed, withdrawn or still free, and none below zero.
    assert account.committed == D("3000.00") * approved
    assert account.free + account.committed + D("1000.00") * withdrawn == lodged
    assert account.free >= 0
    # Free margin only shrinks during the race: a refusal saw no more than what is left now.
    if approved < CLICKS:
        assert account.free < D("3000.00")
    if withdrawn < WITHDRAWALS:
        assert account.free < D("1000.00")
    assert MarginWithdrawal.objects.filter(account=account).count() == withdrawn
    assert book_check() == []
