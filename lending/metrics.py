"""Lending's business figures for ``GET /metrics`` (``scf.metrics``), read from the database at
scrape time so that every process answers the same: decisions by outcome
(``scf_decisions_total``), disbursements by status (``scf_disbursements``), close-of-business runs
and their duration (``scf_cob_duration_seconds`` summary from ``CobRun`` rows, and the latest
run's duration per program). ``LendingConfig.ready`` registers the collector.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, DurationField, ExpressionWrapper, F, OuterRef, Subquery, Sum
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from scf.metrics import counts_by, safely

from .models import (
    CobRun,
    Decision,
    DecisionOutcome,
    Disbursement,
    DisbursementStatus,
    Program,
)


class LendingCollector(Collector):
    """Each figure on its own: one that fails (a database hiccup) leaves the others."""

    def collect(self) -> Iterator[Metric]:
        yield from safely(self._decisions)
        yield from safely(self._disbursements)
        yield from safely(self._cob)

    def _decisions(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "scf_decisions", "Finance decisions made, by outcome.", labels=["outcome"]
        )
        yield counts_by(family, Decision, "outcome", DecisionOutcome.values)

    def _disbursements(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "scf_disbursements", "Disbursements by current status.", labels=["status"]
        )
        yield counts_by(family, Disbursement, "status", DisbursementStatus.values)

    def _cob(self) -> Iterator[Metric]:
        duration = ExpressionWrapper(
            F("finished_at") - F("started_at"), output_field=DurationField()
        )
        finished = CobRun.objects.filter(finished_at__isnull=False)
        totals = finished.aggregate(n=Count("id"), total=Sum(duration))
        summary = SummaryMetricFamily(
            "scf_cob_duration_seconds", "Close-of-business runs finished and their duration."
        )
        total = totals["total"]
        summary.add_metric([], totals["n"], total.total_seconds() if total else 0.0)
        yield summary

        latest = finished.filter(program=OuterRef("pk")).order_by("-business_date")
        last = GaugeMetricFamily(
            "scf_cob_last_duration_seconds",
            "Duration of each program's latest finished close of business.",
            labels=["program"],
        )
        rows = Program.objects.annotate(
            started=Subquery(latest.values("started_at")[:1]),
            finished=Subquery(latest.values("finished_at")[:1]),
        ).filter(finished__isnull=False)
        for program_id, started, ended in rows.values_list("pk", "started", "finished"):
            last.add_metric([str(program_id)], max((ended - started).total_seconds(), 0.0))
        yield last
