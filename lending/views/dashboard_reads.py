"""Reads only the dashboard page needs: chart series, order-feed health, exposure table filters.

The headline figures, DPD buckets and per-agent exposure come from ``program_dashboard`` (the
API's selector). What is here adds time series and presentation:

- *outstanding over time* is the program's principal-receivable balance per business date, read
  from the ledger (one opening aggregate and one grouped query), so the chart agrees with the
  books by construction;
- *financed per day* groups the loans the dashboard counts as financed (``FINANCED``) by the
  day they were financed in the program's time zone (one grouped query);
- *feed health* mirrors ``GET /api/v1/integrations/orders/feed/health/`` (two queries).

Amounts stay ``Decimal`` and travel to the charts as strings; Chart.js reads them as numbers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from orders.models import FeedEvent, FeedOutcome
from scf import clock

from ..models import AccountCode, CreditLine, JournalLine, Loan, Program
from ..program_selectors import FINANCED, ProgramDashboard

ZERO = Decimal("0.00")
SERIES_DAYS = 90
TOP_AGENTS = 10
RECENT_REJECTIONS = 10


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


def chart_data(dashboard: ProgramDashboard, series: Series) -> dict[str, Any]:
    """Everything the three charts draw, as JSON-safe values (amounts as strings)."""
    top = [line for line in dashboard.agents if line.exposure > 0][:TOP_AGENTS]  # type: ignore[attr-defined]
    return {
        "currency": dashboard.program.currency,
        "utilisation": {
            "labels": series.labels,
            "outstanding": series.outstanding,
            "financed": series.financed,
        },
        "overdue": {
            "labels": [bucket.bucket for bucket in dashboard.overdue],
            "outstanding": [f"{bucket.outstanding:.2f}" for bucket in dashboard.overdue],
            "counts": [bucket.count for bucket in dashboard.overdue],
        },
        "agents": {
            "labels": [line.agent.code for line in top],
            "names": [line.agent.name for line in top],
            "outstanding": [f"{line.outstanding_principal:.2f}" for line in top],
            "reserved": [f"{line.reserved:.2f}" for line in top],
        },
    }


def feed_health(*, enterprise_id: int) -> dict[str, Any]:
    """Last event, last applied event, the last 24 hours by outcome, the latest rejections."""
    events = FeedEvent.objects.filter(enterprise_id=enterprise_id)
    since = timezone.now() - dt.timedelta(hours=24)
    summary = events.aggregate(
        last_event_at=Max("received_at"),
        last_applied_at=Max("received_at", filter=Q(outcome=FeedOutcome.APPLIED)),
        **{
            outcome: Count("id", filter=Q(outcome=outcome, received_at__gte=since))
            for outcome in FeedOutcome.values
        },
    )
    rejected = events.filter(outcome=FeedOutcome.REJECTED).order_by("-received_at", "-id")
    return {
        "last_event_at": summary["last_event_at"],
        "last_applied_at": summary["last_applied_at"],
        "last_24h": {outcome: summary[outcome] for outcome in FeedOutcome.values},
        "rejections": list(rejected[:RECENT_REJECTIONS]),
    }


SORT_KEYS = {
    "agent": lambda line: line.agent.code,
    "grade": lambda line: line.risk_grade,
    "limit": lambda line: line.limit,
    "outstanding": lambda line: line.outstanding_principal,
    "reserved": lambda line: line.reserved,
    "exposure": lambda line: line.exposure,
    "available": lambda line: line.available,
    "loans": lambda line: line.loan_count,
    "dpd": lambda line: line.max_dpd,
}


@dataclass(frozen=True)
class ExposureFilter:
    query: str = ""
    grade: str = ""
    frozen: str = ""  # "", "yes", "no"
    sort: str = "exposure"
    descending: bool = True

    @property
    def narrows(self) -> bool:
        """Whether the filter leaves some agents out (the sort order does not)."""
        return bool(self.query.strip() or self.grade or self.frozen)

    def params(self) -> dict[str, str]:
        """The filter (not the sort) as query parameters, for the CSV exports' links."""
        values = {"q": self.query.strip(), "grade": self.grade, "frozen": self.frozen}
        return {name: value for name, value in values.items() if value}

    def matches(self, line: CreditLine) -> bool:
        needle = self.query.strip().casefold()
        return (
            (not needle or needle in f"{line.agent.code} {line.agent.name}".casefold())
            and (not self.grade or line.risk_grade == self.grade)
            and (not self.frozen or line.frozen == (self.frozen == "yes"))
        )

    def apply(self, lines: list[CreditLine]) -> list[CreditLine]:
        """Filter and sort the dashboard's lines (already loaded in one query)."""
        key = SORT_KEYS.get(self.sort, SORT_KEYS["exposure"])
        return sorted(filter(self.matches, lines), key=key, reverse=self.descending)

    def agent_ids(self, program: Program) -> list[int] | None:
        """The program's agents the filter keeps (one query); ``None`` when it keeps all."""
        if not self.narrows:
            return None
        lines = CreditLine.objects.filter(program_id=program.pk).select_related("agent")
        return [line.agent_id for line in lines if self.matches(line)]
