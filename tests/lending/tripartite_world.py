"""A tripartite program for tests: terms (m = 30 %, a = 70 %), an agent with a line, a signed
agreement, a margin account, and two operations users for maker-checker."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from lending.models import Agreement, CreditLine, MarginAccount, Program, TripartiteTerms
from lending.services.margin import margin_account_get_or_create, margin_deposit
from orders.models import Agent, User
from scf import clock
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.orders.factories import AgentFactory, UserFactory

BIG = Decimal("100000000.00")


@dataclass
class World:
    program: Program
    terms: TripartiteTerms
    agent: Agent
    line: CreditLine
    agreement: Agreement
    account: MarginAccount
    ops: User
    ops2: User


def today(program: Program) -> dt.date:
    return clock.business_date(program.time_zone)


def tripartite_program(enterprise: Any, **terms: Any) -> tuple[Program, TripartiteTerms]:
    program = ProgramFactory(
        enterprise=enterprise,
        advance_rate=Decimal("0.7000"),
        limit=BIG,
        max_principal=BIG,
        auto_approve_limit=BIG,
        maker_checker_threshold=BIG,
    )
    values: dict[str, Any] = {
        "enabled": True,
        "margin_ratio": Decimal("0.3000"),
        "program_cap": Decimal("10000000.00"),
        "margin_withdraw_approval_threshold": Decimal("50000.00"),
        **terms,
    }
    return program, TripartiteTerms.objects.create(program=program, **values)


def agent_under(program: Program, *, cap: str = "1000000.00", margin: str = "0") -> tuple:
    agent = AgentFactory(enterprises=[program.enterprise])
    agent.settlement_account_name = agent.name
    agent.settlement_account_no = f"6217{agent.pk:012d}"
    agent.save()
    line = CreditLineFactory(agent=agent, program=program, limit=BIG, risk_grade="A")
    agreement = Agreement.objects.create(
        program=program, agent=agent, signed_on=today(program), agent_cap=Decimal(cap)
    )
    account = margin_account_get_or_create(program=program, agent=agent)
    if Decimal(margin) > 0:
        lodge(account, margin, f"DEP-{agent.pk}-0")
    account.refresh_from_db()
    return agent, line, agreement, account


def lodge(account: MarginAccount, amount: str, reference: str) -> None:
    margin_deposit(
        account=account,
        amount=Decimal(amount),
        value_date=today(account.program),
        reference=reference,
        actor="test",
    )


def world(enterprise: Any, *, margin: str = "0", **terms: Any) -> World:
    program, tri = tripartite_program(enterprise, **terms)
    agent, line, agreement, account = agent_under(program, margin=margin)
    return World(
        program=program,
        terms=tri,
        agent=agent,
        line=line,
        agreement=agreement,
        account=account,
        ops=UserFactory(role="ops_admin"),
        ops2=UserFactory(role="ops_admin"),
    )
