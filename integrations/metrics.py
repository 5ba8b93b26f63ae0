"""The file rail's figures for ``GET /metrics`` (``scf.metrics``), read from the database at
scrape time: reconciliation breaks of each account's latest run (``scf_reconciliation_breaks``),
unapplied credits by status (``scf_unapplied_credits``) and bank files by direction and status
(``scf_bank_files``). ``IntegrationsConfig.ready`` registers the collector."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from scf.metrics import counts_by, safely

from .bank.files.selectors import latest_break_counts
from .bank_models import BankFile, UnappliedCredit, UnappliedStatus


class BankFilesCollector(Collector):
    """Each figure on its own: one that fails leaves the others."""

    def collect(self) -> Iterator[Metric]:
        yield from safely(self._breaks)
        yield from safely(self._unapplied)
        yield from safely(self._files)

    def _breaks(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "scf_reconciliation_breaks",
            "Breaks found by the latest reconciliation of each bank account.",
            labels=["bank", "account"],
        )
        for bank, account, breaks in latest_break_counts():
            family.add_metric([bank, account], breaks)
        yield family

    def _unapplied(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "scf_unapplied_credits", "Unapplied bank credits by status.", labels=["status"]
        )
        yield counts_by(family, UnappliedCredit, "status", UnappliedStatus.values)

    def _files(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "scf_bank_files", "Bank files by direction and status.", labels=["direction", "status"]
        )
        rows = BankFile.objects.values_list("direction", "status").annotate(n=Count("id"))
        for direction, status, n in rows:
            family.add_metric([direction, status], n)
        yield family
