"""Celery tasks for money over time: the nightly close of business. Thin: each calls one service.

Wire-up: these live outside ``lending.tasks`` so the accrual work has its own module; Celery must
import it (``CELERY_IMPORTS`` or an import from ``lending.tasks``), and the beat entry
``lending-cob-run-due`` runs ``lending.cob_run_due`` every hour.
"""

from __future__ import annotations

from celery import shared_task

from .services.cob import cob_run_through


@shared_task(name="lending.cob_run_due")
def cob_run_due() -> dict[str, int]:
    """Beat, hourly: close every program's days through yesterday *in its own time zone*.

    Each program is therefore closed once a day, in the first run after its local midnight;
    the other runs find nothing to do. Idempotent and safe to overlap with itself (a date is
    claimed once; a racing run returns without posting).
    """
    results = cob_run_through()
    return {
        "closed": sum(1 for r in results if r.ran),
        "failed": sum(1 for r in results if r.error),
    }
