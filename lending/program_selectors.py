"""Reads for programs, their dashboards and agents' credit lines.

Every figure is aggregated in the database: the program list is one query whatever the number of
programs, loans or agents (per-program totals are correlated subqueries), and a dashboard is
three (the program, one conditional aggregate over its loans, its lines with per-line subqueries).

Who sees what: bank staff everything; an enterprise admin its enterprise's programs, their
dashboards and the lines in them; an agent the programs it has a line in and its own lines. A row
the user may not see is reported as missing (``None``), so the API answers 404, not 403.

Headroom figures (limit, outstanding, reserved) come from the program and line rows, which the
credit services keep exact; "financed" means a loan that reached approved or beyond; "overdue"
means an open loan (active or overdue) whose status is overdue or whose DPD is above zero.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import (
    Count,
    DecimalField,
    Exists,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from orders.models import Role, User
from scf import clock

from .models import OPEN, RESERVES_CREDIT, CreditLine, Loan, LoanStatus, Program

FINANCED = [
    LoanStatus.APPROVED,
    LoanStatus.DISBURSING,
    LoanStatus.ACTIVE,
    LoanStatus.OVERDUE,
    LoanStatus.REPAID,
    LoanStatus.WRITTEN_OFF,
]
# Loans that currently use credit on a line: reserved or outstanding.
LIVE = [*RESERVES_CREDIT, *OPEN]
# (label, lowest DPD, highest DPD); an overdue loan still at 0 DPD counts in the first bucket.
DPD_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("1-30", 0, 30),
    ("31-60", 31, 60),
    ("61-90", 61, 90),
    ("90+", 91, None),
)
ZERO = Decimal("0.00")
MONEY: DecimalField[Any, Any] = DecimalField(max_digits=18, decimal_places=2)
OVERDUE = Q(status__in=OPEN) & (Q(status=LoanStatus.OVERDUE) | Q(days_past_due__gt=0))


@dataclass(frozen=True)
class Financed:
    order_count: int
    order_amount: Decimal
    principal: Decimal


@dataclass(frozen=True)
class DpdBucket:
    bucket: str
    count: int
    outstanding: Decimal


@dataclass(frozen=True)
class ProgramDashboard:
    program: Program
    as_of: dt.date
    financed: Financed
    financed_today: Financed
    financed_month: Financed
    overdue: list[DpdBucket]
    overdue_total: DpdBucket
    agents: list[CreditLine]

    @property
    def utilised(self) -> Decimal:
        return self.program.outstanding_principal + self.program.reserved


def programs_visible_to(user: User) -> QuerySet[Program]:
    """Programs a user may see: bank staff all, an enterprise admin its own, an agent its lines'."""
    if getattr(user, "is_bank_staff", False):
        return Program.objects.all()
    role = getattr(user, "role", None)
    if role == Role.ENTERPRISE_ADMIN:
        return Program.objects.filter(enterprise_id=user.enterprise_id)
    if role == Role.AGENT and user.agent_id is not None:
        lines = CreditLine.objects.filter(program_id=OuterRef("pk"), agent_id=user.agent_id)
        return Program.objects.filter(Exists(lines))
    return Program.objects.none()


def _per_program(loans: QuerySet[Loan], aggregate: Sum | Count, default: Value) -> Coalesce:
    """One total per program as a correlated subquery (no join, no GROUP BY on the program)."""
    totals = (
        loans.filter(program_id=OuterRef("pk"))
        .order_by()
        .values("program_id")
        .annotate(total=aggregate)
        .values("total")
    )
    return Coalesce(Subquery(totals[:1]), default)


def _with_figures(programs: QuerySet[Program]) -> QuerySet[Program]:
    financed = Loan.objects.filter(status__in=FINANCED)
    overdue = Loan.objects.filter(OVERDUE)
    zero_money, zero = Value(ZERO, output_field=MONEY), Value(0, output_field=IntegerField())
    lines = (
        CreditLine.objects.filter(program_id=OuterRef("pk"))
        .order_by()
        .values("program_id")
        .annotate(total=Count("pk"))
        .values("total")
    )
    return programs.select_related("bank", "enterprise").annotate(
        utilised=F("outstanding_principal") + F("reserved"),
        financed_order_count=_per_program(financed, Count("pk"), zero),
        financed_order_amount=_per_program(financed, Sum("order_amount"), zero_money),
        financed_principal=_per_program(financed, Sum("principal"), zero_money),
        overdue_count=_per_program(overdue, Count("pk"), zero),
        overdue_outstanding=_per_program(overdue, Sum("outstanding_principal"), zero_money),
        agent_count=Coalesce(Subquery(lines[:1]), zero),
    )


def program_list(*, user: User) -> QuerySet[Program]:
    """The user's programs with headline figures, in one query."""
    return _with_figures(programs_visible_to(user)).order_by("code")


def program_get(*, user: User, program_id: int) -> Program | None:
    """One of the user's programs with its terms and headline figures."""
    return _with_figures(programs_visible_to(user)).filter(pk=program_id).first()


def _dashboard_programs(user: User) -> QuerySet[Program]:
    """Dashboards are for bank staff and the program's own enterprise admin, not for agents."""
    if getattr(user, "is_bank_staff", False):
        return Program.objects.all()
    if getattr(user, "role", None) == Role.ENTERPRISE_ADMIN:
        return Program.objects.filter(enterprise_id=user.enterprise_id)
    return Program.objects.none()


def _period_bounds(program: Program) -> tuple[dt.date, dict[str, tuple[dt.datetime, dt.datetime]]]:
    """Today's business date in the program's zone and the instants bounding today and the month."""
    zone = ZoneInfo(program.time_zone)
    today = clock.business_date(program.time_zone)
    month = today.replace(day=1)
    next_month = (month + dt.timedelta(days=32)).replace(day=1)

    def start(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time.min, tzinfo=zone)

    bounds = {
        "today": (start(today), start(today + dt.timedelta(days=1))),
        "month": (start(month), start(next_month)),
    }
    return today, bounds


def _loan_figures(program: Program, bounds: dict[str, tuple[dt.datetime, dt.datetime]]) -> dict:
    """Financed totals (all time, today, month) and DPD buckets: one conditional aggregate."""
    financed = Q(status__in=FINANCED)
    periods = {"all": financed}
    for name, (begin, end) in bounds.items():
        periods[name] = financed & Q(financed_at__gte=begin, financed_at__lt=end)
    aggregates: dict[str, Count | Sum] = {}
    for name, condition in periods.items():
        aggregates[f"{name}_count"] = Count("pk", filter=condition)
        aggregates[f"{name}_order_amount"] = Sum("order_amount", filter=condition)
        aggregates[f"{name}_principal"] = Sum("principal", filter=condition)
    for label, low, high in DPD_BUCKETS:
        condition = OVERDUE & Q(days_past_due__gte=low)
        if high is not None:
            condition &= Q(days_past_due__lte=high)
        aggregates[f"{label}_count"] = Count("pk", filter=condition)
        aggregates[f"{label}_outstanding"] = Sum("outstanding_principal", filter=condition)
    loans = Loan.objects.filter(program_id=program.pk).annotate(
        financed_at=Coalesce("approved_at", "requested_at")
    )
    return loans.aggregate(**aggregates)


def _financed(figures: dict, name: str) -> Financed:
    return Financed(
        order_count=figures[f"{name}_count"],
        order_amount=figures[f"{name}_order_amount"] or ZERO,
        principal=figures[f"{name}_principal"] or ZERO,
    )


def _buckets(figures: dict) -> tuple[list[DpdBucket], DpdBucket]:
    buckets = [
        DpdBucket(label, figures[f"{label}_count"], figures[f"{label}_outstanding"] or ZERO)
        for label, _, _ in DPD_BUCKETS
    ]
    total = DpdBucket(
        "total", sum(b.count for b in buckets), sum((b.outstanding for b in buckets), ZERO)
    )
    return buckets, total


def agent_exposures(*, program: Program) -> list[CreditLine]:
    """The program's lines, largest exposure (outstanding + reserved) first, in one query.

    Each line carries ``exposure``, ``loan_count`` (loans reserving or outstanding) and
    ``max_dpd`` (over its open loans).
    """
    loans = Loan.objects.filter(credit_line_id=OuterRef("pk")).order_by().values("credit_line_id")
    live = loans.filter(status__in=LIVE).annotate(n=Count("pk")).values("n")
    worst = loans.filter(status__in=OPEN).annotate(m=Max("days_past_due")).values("m")
    zero = Value(0, output_field=IntegerField())
    lines = (
        CreditLine.objects.filter(program_id=program.pk)
        .select_related("agent")
        .annotate(
            exposure=F("outstanding_principal") + F("reserved"),
            loan_count=Coalesce(Subquery(live[:1]), zero),
            max_dpd=Coalesce(Subquery(worst[:1]), zero),
        )
        .order_by("-exposure", "agent__code")
    )
    return list(lines)


def program_dashboard(*, user: User, program_id: int) -> ProgramDashboard | None:
    """A program's dashboard for bank staff or its enterprise admin; ``None`` for anyone else.

    Reads without locks: figures are a consistent snapshot per query, not across the three.
    """
    program = (
        _dashboard_programs(user).select_related("bank", "enterprise").filter(pk=program_id).first()
    )
    if program is None:
        return None
    today, bounds = _period_bounds(program)
    figures = _loan_figures(program, bounds)
    overdue, overdue_total = _buckets(figures)
    return ProgramDashboard(
        program=program,
        as_of=today,
        financed=_financed(figures, "all"),
        financed_today=_financed(figures, "today"),
        financed_month=_financed(figures, "month"),
        overdue=overdue,
        overdue_total=overdue_total,
        agents=agent_exposures(program=program),
    )


def credit_lines_visible_to(user: User) -> QuerySet[CreditLine]:
    """Lines a user may see: an agent its own, an enterprise admin those in its programs."""
    if getattr(user, "is_bank_staff", False):
        return CreditLine.objects.all()
    role = getattr(user, "role", None)
    if role == Role.ENTERPRISE_ADMIN:
        return CreditLine.objects.filter(program__enterprise_id=user.enterprise_id)
    if role == Role.AGENT and user.agent_id is not None:
        return CreditLine.objects.filter(agent_id=user.agent_id)
    return CreditLine.objects.none()


def credit_line_for_agent(
    *, user: User, agent_id: int, program_id: int | None = None
) -> CreditLine | None:
    """The agent's line in ``program_id``, or in its first program (lowest id) the user may see."""
    lines = credit_lines_visible_to(user).filter(agent_id=agent_id)
    if program_id is not None:
        lines = lines.filter(program_id=program_id)
    return lines.select_related("agent", "program").order_by("program_id").first()
