"""Quotes for a page of orders (``loan_quotes``) decide every order exactly as the one-order
quote (``loan_quote``) does, in three queries whatever the number of orders."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lending.models import Loan, Program
from lending.services.finance import NotConfigured, loan_finance, loan_quote
from lending.services.lines import credit_line_freeze
from lending.services.quotes import loan_quotes
from lending.services.terms import largest_order_for, principal_for
from orders.models import AgentRelationship, SalesOrder, User
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.lending.loan_makers import disbursed_loan
from tests.orders.factories import AgentFactory, EnterpriseFactory, OrderFactory, UserFactory

pytestmark = pytest.mark.django_db


def _agent_with_line(enterprise: Any, program: Program, **line: Any) -> tuple[User, Any]:
    agent = AgentFactory(enterprises=[enterprise])
    line_row = CreditLineFactory(agent=agent, program=program, **line)
    return UserFactory(role="agent", agent=agent), line_row


def _every_kind_of_order() -> list[tuple[str, User, SalesOrder]]:
    """One order for each way the engine (or the setup) can answer, over several agents,
    enterprises and programs."""
    enterprise = EnterpriseFactory()
    program = ProgramFactory(
        enterprise=enterprise, auto_approve_limit=Decimal("20000.00"), max_order_age_days=30
    )
    user, _line = _agent_with_line(enterprise, program)
    today = dt.date.today()

    def order(amount: str = "10000.00", **kwargs: Any) -> SalesOrder:
        kwargs.setdefault("agent", user.agent)
        kwargs.setdefault("enterprise", enterprise)
        return OrderFactory(amount=Decimal(amount), **kwargs)

    cases: list[tuple[str, User, SalesOrder]] = [
        ("approved", user, order()),
        ("referred", user, order("40000.00")),
        ("too old", user, order(order_date=today - dt.timedelta(days=45))),
        ("delivered", user, order(status="delivered")),
        ("cancelled", user, order(status="cancelled")),
        ("below minimum", user, order("100.00")),
        ("above maximum", user, order("2000000.00")),
        ("not enough credit", user, order("1300000.00")),
        ("currency", user, order(currency="USD")),
    ]
    financed = order()
    loan_finance(user=user, order_id=financed.pk)
    cases.append(("financed", user, financed))

    frozen_user, frozen_line = _agent_with_line(enterprise, program)
    credit_line_freeze(actor=UserFactory(role="ops_admin"), line=frozen_line, reason="check")
    cases.append(("frozen", frozen_user, order(agent=frozen_user.agent)))

    late_user, late_line = _agent_with_line(enterprise, program, risk_grade="D")
    disbursed_loan(
        late_line,
        value_date=today - dt.timedelta(days=100),
        due_date=today - dt.timedelta(days=12),
        status="overdue",
        days_past_due=12,
    )
    cases.append(("overdue, grade D", late_user, order(agent=late_user.agent)))

    weak_user, _ = _agent_with_line(enterprise, program, risk_grade="D")
    cases.append(("grade D", weak_user, order(agent=weak_user.agent)))

    gone_user, _ = _agent_with_line(enterprise, program)
    AgentRelationship.objects.filter(agent=gone_user.agent).update(active=False)
    cases.append(("relationship ended", gone_user, order(agent=gone_user.agent)))

    no_line = UserFactory(role="agent", agent=AgentFactory(enterprises=[enterprise]))
    cases.append(("no line", no_line, order(agent=no_line.agent)))

    full = EnterpriseFactory()
    full_program = ProgramFactory(enterprise=full, limit=Decimal("5000.00"))
    full_user, _ = _agent_with_line(full, full_program)
    cases.append(("program full", full_user, order(agent=full_user.agent, enterprise=full)))

    refers = EnterpriseFactory()
    refer_program = ProgramFactory(
        enterprise=refers, refer_rules=["order_too_old"], max_order_age_days=10
    )
    refer_user, _ = _agent_with_line(refers, refer_program)
    old = order(agent=refer_user.agent, enterprise=refers, order_date=today - dt.timedelta(20))
    cases.append(("program refers", refer_user, old))

    paused = EnterpriseFactory()
    paused_program = ProgramFactory(enterprise=paused, status="suspended")
    paused_user, _ = _agent_with_line(paused, paused_program)
    cases.append(("program paused", paused_user, order(agent=paused_user.agent, enterprise=paused)))

    bare = EnterpriseFactory()
    bare_user = UserFactory(role="agent", agent=AgentFactory(enterprises=[bare]))
    cases.append(("no program", bare_user, order(agent=bare_user.agent, enterprise=bare)))
    return cases


def test_the_page_quote_decides_every_order_as_the_single_quote_does() -> None:
    cases = _every_kind_of_order()
    orders = list(
        SalesOrder.objects.filter(pk__in=[o.pk for _, _, o in cases]).select_related("agent")
    )
    quotes = loan_quotes(orders=orders)
    outcomes = set()
    for name, user, order in cases:
        page = quotes[order.pk]
        try:
            single = loan_quote(user=user, order_id=order.pk)
        except NotConfigured as exc:
            assert (page.outcome, page.error_code) == ("unavailable", exc.code), name
            outcomes.add(exc.code)
            continue
        assert page.decision is not None, name
        assert page.decision.inputs == single.decision.inputs, name
        assert page.decision.reasons == single.decision.reasons, name
        assert page.decision.outcome == single.decision.outcome, name
        assert page.terms == single.terms and page.program == single.program, name
        outcomes.update(r["code"] for r in single.decision.reasons)
        outcomes.add(single.decision.outcome)
    # every kind of answer was compared
    assert outcomes >= {
        "approved",
        "in_review",
        "declined",
        "above_auto_approve_limit",
        "grade_below_auto_approve",
        "program_rule_refer",
        "order_too_old",
        "order_not_financeable",
        "order_cancelled",
        "order_already_financed",
        "amount_below_minimum",
        "amount_above_maximum",
        "insufficient_credit_line",
        "insufficient_program_limit",
        "currency_mismatch",
        "line_frozen",
        "agent_overdue",
        "agent_inactive",
        "program_inactive",
        "no_credit_line",
        "no_program",
    }


def test_the_page_quote_names_the_loan_holding_an_order_and_the_loans_to_repay() -> None:
    cases = {name: (user, order) for name, user, order in _every_kind_of_order()}
    _user, financed = cases["financed"]
    late_user, late_order = cases["overdue, grade D"]
    quotes = loan_quotes(orders=[financed, late_order])
    assert quotes[financed.pk].financed_by is not None
    assert quotes[financed.pk].financed_by.id == Loan.objects.get(order=financed).pk
    repay = quotes[late_order.pk].to_repay
    assert [r.id for r in repay] == [Loan.objects.get(agent=late_user.agent).pk]
    assert repay[0].days_past_due == 12


def test_the_page_quote_takes_three_queries_for_any_number_of_orders(
    django_assert_num_queries: Any,
) -> None:
    cases = _every_kind_of_order()
    orders = list(
        SalesOrder.objects.filter(pk__in=[o.pk for _, _, o in cases]).select_related("agent")
    )
    with django_assert_num_queries(3):
        loan_quotes(orders=orders)
    with django_assert_num_queries(3):
        loan_quotes(orders=orders[:2])


@given(
    cap=st.decimals(min_value=0, max_value=10**9, places=2),
    rate=st.decimals(min_value=Decimal("0.0100"), max_value=1, places=4),
)
def test_largest_order_for_is_the_last_cent_whose_principal_fits(
    cap: Decimal, rate: Decimal
) -> None:
    amount = largest_order_for(cap, rate)
    assert principal_for(amount, rate) <= cap
    assert principal_for(amount + Decimal("0.01"), rate) > cap
