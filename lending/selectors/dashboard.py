"""Reads for a program's dashboard: headline figures, DPD buckets, agent exposure, chart series
and the CSV exports (the API's ``/programs/{id}/dashboard/`` and the dashboard page share them).

- *the dashboard* is three queries: the program, one conditional aggregate over its loans
  (financed all time, today and this month; DPD buckets), its lines with per-line subqueries;
- *outstanding over time* is the program's principal-receivable balance per business date, read
  from the ledger (one opening aggregate and one grouped query), so the chart agrees with the
  books by construction;
- *financed per day* groups the loans the dashboard counts as financed (``FINANCED``) by the
  day they were financed in the program's time zone (one grouped query);
- *the exports* are the program's orders and loans of the agents a filter keeps, streamed.

Reads without locks: figures are a consistent snapshot per query, not across queries.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import (
    Count,
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
from django.db.models.functions import Coalesce, TruncDate

from orders.models import SalesOrder, User
from orders.selectors import order_list
from scf import clock

from ..dpd import DPD_LABELS, past_due_in_bucket
from ..models import OPEN, AccountCode, CreditLine, JournalLine, Loan, Program
from .ledger import ZERO
from .loans import loan_list
from .programs import FINANCED, LIVE, dashboard_programs

SERIES_DAYS = 90


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
    for label in DPD_LABELS:
        condition = past_due_in_bucket(label)
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
        for label in DPD_LABELS
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
    """A program's dashboard for bank staff or its enterprise admin; ``None`` for anyone else."""
    program = (
        dashboard_programs(user).select_related("bank", "enterprise").filter(pk=program_id).first()
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


@dataclass(frozen=True)
class Series:
    labels: list[str]
    outstanding: list[str]
    financed: list[str]


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]


def utilisation_series(program: Program, *, days: int = SERIES_DAYS) -> Series:
    """Outstanding principal at the end of each of the last ``days`` business dates (ledger),
    and principal financed on each of them."""
    today = clock.business_date(program.time_zone)
    start = today - dt.timedelta(days=days - 1)
    lines = JournalLine.objects.filter(
        account=AccountCode.PRINCIPAL_RECEIVABLE, loan__program_id=program.pk
    )
    opening = lines.filter(entry__business_date__lt=start).aggregate(
        d=Sum("debit"), c=Sum("credit")
    )
    moves = {
        row["entry__business_date"]: (row["d"] or ZERO) - (row["c"] or ZERO)
        for row in lines.filter(entry__business_date__range=(start, today))
        .values("entry__business_date")
        .annotate(d=Sum("debit"), c=Sum("credit"))
        .order_by()
    }
    zone = ZoneInfo(program.time_zone)
    financed = {
        row["day"]: row["total"] or ZERO
        for row in Loan.objects.filter(program_id=program.pk, status__in=FINANCED)
        .annotate(financed_at=Coalesce("approved_at", "requested_at"))
        .filter(financed_at__gte=dt.datetime.combine(start, dt.time.min, tzinfo=zone))
        .annotate(day=TruncDate("financed_at", tzinfo=zone))
        .values("day")
        .annotate(total=Sum("principal"))
        .order_by()
    }
    balance = (opening["d"] or ZERO) - (opening["c"] or ZERO)
    labels, outstanding, per_day = [], [], []
    for day in _days(start, today):
        balance += moves.get(day, ZERO)
        labels.append(day.isoformat())
        outstanding.append(f"{balance:.2f}")
        per_day.append(f"{financed.get(day, ZERO):.2f}")
    return Series(labels, outstanding, per_day)


def program_lines(*, program: Program) -> list[CreditLine]:
    """The program's lines with their agents (one query), for filtering by agent."""
    return list(CreditLine.objects.filter(program_id=program.pk).select_related("agent"))


def program_orders_export(
    *, user: User, program: Program, agent_ids: list[int] | None = None
) -> QuerySet[SalesOrder]:
    """The program's enterprise's orders in its currency that ``user`` may see, oldest first;
    only those of ``agent_ids`` when given."""
    orders = (
        order_list(user=user)
        .filter(enterprise_id=program.enterprise_id, currency=program.currency)
        .order_by("order_date", "id")
    )
    return orders if agent_ids is None else orders.filter(agent_id__in=agent_ids)


def program_loans_export(
    *, user: User, program: Program, agent_ids: list[int] | None = None
) -> QuerySet[Loan]:
    """The program's loans (every status) that ``user`` may see, by id; only those of
    ``agent_ids`` when given."""
    loans = loan_list(user=user).filter(program_id=program.pk).order_by("id")
    return loans if agent_ids is None else loans.filter(agent_id__in=agent_ids)
