"""Scenario 3, mixed race: repayments, finance clicks and close of business on one line at once.

One credit line carries eight disbursed loans whose first two nights are already closed. Then,
released together on separate threads and connections:

* 16 repayments through the API (ops staff): on time and backdated into the closed nights,
  partial and overpaying, each sent twice at once (same reference: applied once);
* 12 finance clicks through the API for new orders on the same line (the approved ones are paid
  out by the sandbox bank right after their commit, so disbursements settle in the race too),
  with the line's headroom too small for all of them;
* two close-of-business catch-ups for the next night.

Afterwards the line's and the program's ``available`` must equal ``limit - outstanding -
reserved`` recomputed from sources other than their own columns: outstanding from the ledger
(principal receivable, per loan), reserved from the loans that hold a reservation. Difference
0; ``book_check`` clean (every entry balanced, loans agree with the ledger, totals per currency
balanced); and no client saw a 5xx or a database error.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from lending.models import RESERVES_CREDIT, CreditLine, Loan, Program, Repayment
from lending.selectors.ledger import loan_ledger_balances
from lending.services.book_check import book_check, currency_totals
from lending.services.cob import cob_run_through
from scf import clock
from tests.conftest import client_for
from tests.lending.active_loans import active_loan
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.orders.factories import AgentFactory, OrderFactory, UserFactory

from .race_helpers import failures, run_at_once, server_errors

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

LOANS = 8
LOAN = Decimal("20000.00")
NEW_ORDERS = 12  # 8,000.00 each; the line has room for 5 of them before any repayment
ZERO = Decimal("0.00")


@pytest.fixture
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> dt.datetime:
    now = clock.now()  # one instant for the whole test: "today" cannot roll over mid-race
    monkeypatch.setattr("scf.clock.now", lambda: now)
    return now


def _repay(client: Any, loan: Loan, amount: str, value_date: dt.date, reference: str) -> Any:
    body = {"amount": amount, "value_date": value_date.isoformat(), "reference": reference}
    return lambda: client.post(f"/api/v1/loans/{loan.pk}/repayments/", body, format="json")


def _finance(client: Any, order_id: int) -> Any:
    return lambda: client.post(
        f"/api/v1/orders/{order_id}/finance/",
        {},
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"k{order_id}",
    )


def _without_loan(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != "loan"}


def _recomputed_available(limit: Decimal, loans: Any) -> Decimal:
    ids = list(loans.values_list("pk", flat=True))
    outstanding = sum((b.principal for b in loan_ledger_balances(ids).values()), ZERO)
    reserved = sum(
        loans.filter(status__in=RESERVES_CREDIT).values_list("reserved_amount", flat=True), ZERO
    )
    return limit - outstanding - reserved


def test_repayments_finance_and_cob_at_once_leave_available_equal_to_the_ledger(
    enterprise, frozen_now
):
    today = clock.business_date("Asia/Shanghai")
    start = today - dt.timedelta(days=3)
    program = ProgramFactory(enterprise=enterprise, limit=Decimal("10000000.00"))
    agent = AgentFactory(enterprises=[enterprise])
    line = CreditLineFactory(
        agent=agent, program=program, limit=LOAN * LOANS + Decimal("8000.00") * 5
    )
    loans = [active_loan(line, principal=str(LOAN), value_date=start) for _ in range(LOANS)]
    closed = cob_run_through(through_date=today - dt.timedelta(days=2), program_ids=[program.pk])
    assert [r.ran for r in closed] == [True, True]

    ops = client_for(UserFactory(role="ops_admin"))
    agent_client = client_for(UserFactory(role="agent", agent=agent))
    backdated = today - dt.timedelta(days=2)  # a night COB has already closed
    plans = [
        ("5000.00", today),
        ("25000.00", today),  # more than everything owed: repaid, with an overpayment
        ("5000.00", backdated),
        ("30000.00", backdated),
    ]
    repayments = [
        _repay(ops, loan, *plans[i % len(plans)], reference=f"RP-{loan.pk}")
        for i, loan in enumerate(loans)
    ]
    orders = [
        OrderFactory(agent=agent, enterprise=enterprise, amount=Decimal("10000.00"))
        for _ in range(NEW_ORDERS)
    ]
    clicks = [_finance(agent_client, order.pk) for order in orders]
    cob = [
        lambda: cob_run_through(through_date=today - dt.timedelta(days=1), program_ids=[program.pk])
    ] * 2

    results = run_at_once([*repayments, *repayments, *clicks, *cob])

    assert failures(results) == []
    replies = results[: 2 * LOANS + NEW_ORDERS]
    assert server_errors(replies) == []
    repaid = results[: 2 * LOANS]
    assert Counter(r.status_code for r in repaid) == {201: LOANS, 200: LOANS}
    for first, second in zip(repaid[:LOANS], repaid[LOANS:], strict=True):
        # The same repayment and allocation; the loan's balances may have moved on in between.
        assert _without_loan(first.json()) == _without_loan(second.json())
    finance_replies = results[2 * LOANS : 2 * LOANS + NEW_ORDERS]
    assert {r.status_code for r in finance_replies} == {201}
    outcomes = Counter(r.json()["decision"]["outcome"] for r in finance_replies)
    assert outcomes["approved"] >= 5 and set(outcomes) <= {"approved", "declined"}
    cob_runs = [r for rs in results[-2:] for r in rs]
    assert [r.error for r in cob_runs if r.error] == []
    # One runner closes the night; the other finds it closed (or, starting later, nothing to do).
    assert [r.business_date for r in cob_runs if r.ran] == [today - dt.timedelta(days=1)]
    assert Repayment.objects.count() == LOANS

    line = CreditLine.objects.get(pk=line.pk)
    program = Program.objects.get(pk=program.pk)
    line_loans = Loan.objects.filter(credit_line=line)
    assert line.available - _recomputed_available(line.limit, line_loans) == 0
    assert program.available - _recomputed_available(program.limit, program.loans.all()) == 0
    assert line.available >= 0 and program.available >= 0
    assert book_check() == []
    assert all(total.debit == total.credit for total in currency_totals())
