"""Demo lending data: a program per enterprise, a credit line per agent, and first loans; and a
second bank's program for the first enterprise, with lines for its agents who have a login.

Built through the real services (``program_create``, ``credit_line_create``, ``loan_finance``),
so the demo holds nothing those services would refuse. Line limits follow each agent's order
volume over the last 90 days (rounded down to 10,000 yuan), grades are drawn A-E with most
agents in B-C, and each agent with a login finances a few of its recent orders, so the review
queue and the dashboards have something to show.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, cast

from django.db.models import Sum

from lending.models import Bank, CreditLine, Program, ProgramStatus
from lending.selectors.loans import financeable_orders
from lending.services.finance import loan_finance
from lending.services.lines import credit_line_create, program_create
from orders.models import Role, SalesOrder, User

from .data import AGENT_USERS, SECOND_BANK_CODE, SECOND_BANK_NAME

if TYPE_CHECKING:
    from .data import DemoData

GRADES = ("A", "B", "C", "D", "E")
GRADE_WEIGHTS = (15, 35, 30, 15, 5)
LINE_STEP = Decimal("10000")
MIN_LINE = Decimal("200000")
LOANS_PER_AGENT_USER = 4

PROGRAM_TERMS = {
    "advance_rate": Decimal("0.8000"),
    "limit": Decimal("50000000.00"),
    "min_principal": Decimal("1000.00"),
    "max_principal": Decimal("2000000.00"),
    "tenor_days": 90,
    "annual_rate": Decimal("0.045000"),
    "day_count": "ACT/360",
    "grace_days": 3,
    "penalty_rate": Decimal("0.067500"),
    "max_order_age_days": 60,
    "max_dpd_tolerated": 0,
    "auto_approve_limit": Decimal("300000.00"),
    "auto_approve_grade": "C",
    "maker_checker_threshold": Decimal("500000.00"),
    "review_hold_hours": 48,
}


def demo_programs_create(bank: Bank, data: DemoData) -> None:
    """One program per demo enterprise with the bank; ids go into the credentials file."""
    for demo in data.enterprises:
        code = demo.enterprise.code.replace("CE-", "PRG-")
        program = program_create(
            actor=None,
            bank=bank,
            enterprise=demo.enterprise,
            code=code,
            name=f"{demo.enterprise.name} 经销商订单融资",
            currency="CNY",
            **PROGRAM_TERMS,
        )
        demo.program_ids.append(program.pk)


# The second bank lends less of the order for longer, at a lower rate.
SECOND_BANK_TERMS = {
    **PROGRAM_TERMS,
    "advance_rate": Decimal("0.7500"),
    "limit": Decimal("20000000.00"),
    "tenor_days": 120,
    "annual_rate": Decimal("0.042000"),
}


def demo_second_bank_create(data: DemoData) -> Program:
    """The second bank and its program with the first demo enterprise."""
    bank = Bank.objects.create(code=SECOND_BANK_CODE, name=SECOND_BANK_NAME)
    demo = data.enterprises[0]
    program = program_create(
        actor=None,
        bank=bank,
        enterprise=demo.enterprise,
        code=demo.enterprise.code.replace("CE-", "PRG-") + "-" + SECOND_BANK_CODE,
        name=f"{demo.enterprise.name} 经销商订单融资（{SECOND_BANK_NAME.removesuffix('股份有限公司')}）",
        currency="CNY",
        **SECOND_BANK_TERMS,
    )
    demo.program_ids.append(program.pk)
    return program


def demo_second_bank_lines_create(program: Program, data: DemoData) -> None:
    """A line at the second bank, as large as the agent's line at the first, for each agent
    with a login that buys from the program's enterprise."""
    logins = {a.agent.pk for a in data.agents[:AGENT_USERS]}
    first = CreditLine.objects.filter(
        agent_id__in=logins,
        program__enterprise_id=program.enterprise_id,
        program__status=ProgramStatus.ACTIVE,
    ).exclude(program=program)
    for line in first.select_related("agent").order_by("agent_id"):
        credit_line_create(
            actor=None,
            agent=line.agent,
            program=program,
            limit=line.limit,
            risk_grade=line.risk_grade,
        )


def _line_limit(volume: Decimal) -> Decimal:
    limit = (volume * Decimal("0.6") / LINE_STEP).to_integral_value(rounding=ROUND_DOWN) * LINE_STEP
    return max(limit, MIN_LINE)


def demo_lines_create(rng: random.Random, data: DemoData, today: dt.date) -> None:
    """A line for every agent in every program of an enterprise it buys from."""
    since = today - dt.timedelta(days=90)
    volumes = {
        (row["agent_id"], row["enterprise_id"]): row["total"]
        for row in SalesOrder.objects.filter(order_date__gte=since)
        .exclude(status="cancelled")
        .values("agent_id", "enterprise_id")
        .annotate(total=Sum("amount"))
    }
    for program in Program.objects.filter(
        pk__in=[p for e in data.enterprises for p in e.program_ids]
    ):
        for demo_agent in data.agents:
            if program.enterprise.code not in demo_agent.enterprise_codes:
                continue
            credit_line_create(
                actor=None,
                agent=demo_agent.agent,
                program=program,
                limit=_line_limit(
                    volumes.get((demo_agent.agent.pk, program.enterprise_id)) or Decimal(0)
                ),
                risk_grade=rng.choices(GRADES, weights=GRADE_WEIGHTS)[0],
            )


def demo_loans_create(rng: random.Random, *, at: dt.datetime) -> int:
    """Each agent user finances a few of its newest financeable orders, decided ``at`` the demo's
    moment; returns the count."""
    made = 0
    for user in User.objects.filter(role=Role.AGENT).select_related("agent").order_by("pk"):
        agent_id = cast(int, user.agent_id)  # an agent user has its agent (a CHECK)
        if not CreditLine.objects.filter(agent_id=agent_id).exists():
            continue
        orders = financeable_orders(SalesOrder.objects.filter(agent_id=agent_id))
        for order in orders.order_by("-order_date", "-id")[
            : LOANS_PER_AGENT_USER + rng.randint(0, 2)
        ]:
            loan_finance(user=user, order_id=order.pk, at=at)
            made += 1
    return made
