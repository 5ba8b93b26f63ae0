"""Beat tasks of the file rail: one export and import cycle; the daily reconciliation."""

from __future__ import annotations

import datetime as dt

from celery import shared_task

from .bank.files.export import bank_files_export
from .bank.files.inbound import Outcome, bank_files_import
from .bank.files.reconcile import reconcile_date


@shared_task(name="integrations.bank_files_cycle")
def bank_files_cycle() -> dict[str, int]:
    """Write the queued payments' pain.001 files, then import what the banks delivered."""
    written = bank_files_export()
    result = bank_files_import()
    return {
        "written": len(written),
        "imported": result.count(Outcome.IMPORTED),
        "duplicates": result.count(Outcome.DUPLICATE),
        "quarantined": result.count(Outcome.QUARANTINED),
    }


@shared_task(name="integrations.bank_reconcile")
def bank_reconcile(statement_date: str | None = None) -> int:
    """Reconcile every file-rail bank account for a day (default: yesterday); the breaks."""
    day = dt.date.fromisoformat(statement_date) if statement_date else None
    return sum(run.breaks_count for run in reconcile_date(day))
