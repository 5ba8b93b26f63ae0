"""What the demo holds, counted as the README states it."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from lending.models import (
    Agreement,
    Bank,
    CreditLine,
    GuaranteeClaim,
    Loan,
    MarginMovement,
    MarginMovementKind,
    Program,
    Release,
    ReleaseBreach,
)
from orders.models import Agent, CoreEnterprise, SalesOrder, User

from .data import BANK_CODE, DEMO_EMAIL_DOMAIN, ENTERPRISE_CODES, SECOND_BANK_CODE, DemoData
from .history import DEMO_COHORT

# What ``demo_contents`` counts, in the order and words of the README's table.
DEMO_CONTENTS = {
    "banks": "banks",
    "enterprises": "core enterprises",
    "programs": "programs",
    "agents": "agents",
    "credit_lines": "credit lines",
    "orders": "orders",
    "finance_requests": "finance requests",
    "users": "users",
    "agreements": "tripartite agreements",
    "margin_deposits": "margin deposits",
    "releases": "goods releases",
    "breaches": "release breaches",
    "claims": "guarantee claims",
    "history_agents": "synthetic dealers",
    "history_orders": "their orders",
    "history_loans": "their loans",
}


DEMO_BANKS = (BANK_CODE, SECOND_BANK_CODE)


def demo_programs() -> QuerySet[Program]:
    return Program.objects.filter(bank__code__in=DEMO_BANKS, enterprise__code__in=ENTERPRISE_CODES)


def demo_contents() -> dict[str, int]:
    """What the demo holds: its own rows (the demo banks' programs with the demo enterprises),
    then the scorecard's synthetic history (``PRG-HIST``); keys as in ``DEMO_CONTENTS``."""
    programs = demo_programs()
    history = Program.objects.filter(code=f"PRG-{DEMO_COHORT}")
    contents = {
        "banks": Bank.objects.filter(code__in=DEMO_BANKS).count(),
        "enterprises": CoreEnterprise.objects.filter(code__in=ENTERPRISE_CODES).count(),
        "programs": programs.count(),
        "agents": Agent.objects.filter(relationships__enterprise__code__in=ENTERPRISE_CODES)
        .distinct()
        .count(),
        "credit_lines": CreditLine.objects.filter(program__in=programs).count(),
        "orders": SalesOrder.objects.filter(enterprise__code__in=ENTERPRISE_CODES).count(),
        "finance_requests": Loan.objects.filter(program__in=programs).count(),
        "users": User.objects.filter(email__iendswith="@" + DEMO_EMAIL_DOMAIN).count(),
        "agreements": Agreement.objects.filter(program__in=programs).count(),
        "margin_deposits": MarginMovement.objects.filter(
            account__program__in=programs, kind=MarginMovementKind.DEPOSIT
        ).count(),
        "releases": Release.objects.filter(hold__loan__program__in=programs).count(),
        "breaches": ReleaseBreach.objects.filter(loan__program__in=programs).count(),
        "claims": GuaranteeClaim.objects.filter(loan__program__in=programs).count(),
        "history_agents": CreditLine.objects.filter(program__in=history).count(),
        "history_orders": SalesOrder.objects.filter(enterprise__programs__in=history).count(),
        "history_loans": Loan.objects.filter(program__in=history).count(),
    }
    return {key: contents[key] for key in DEMO_CONTENTS}


def demo_loan_counts() -> dict[str, int]:
    """The demo programs' loans by status (the scoring history's are not among them)."""
    rows = (
        Loan.objects.filter(program__in=demo_programs())
        .values("status")
        .annotate(n=Count("id"))
        .order_by("status")
    )
    return {row["status"]: row["n"] for row in rows}


def demo_order_counts(data: DemoData) -> dict[str, int]:
    """Orders of the demo enterprises by status."""
    rows = (
        SalesOrder.objects.filter(enterprise__in=[e.enterprise for e in data.enterprises])
        .values("status")
        .annotate(n=Count("id"))
        .order_by("status")
    )
    return {row["status"]: row["n"] for row in rows}
