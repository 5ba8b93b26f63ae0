"""Celery task for data-driven credit: the nightly scoring and line management. Thin.

Wire-up (outside this module): Celery must import it (``CELERY_IMPORTS`` or an import from
``lending.tasks``), and a beat entry runs it once a night after close of business, e.g.::

    "lending-nightly-credit": {
        "task": "lending.nightly_credit",
        "schedule": crontab(hour=3, minute=30),   # celery.schedules.crontab, in CELERY_TIMEZONE
    },
"""

from __future__ import annotations

from celery import shared_task

from .services.line_management import credit_nightly


@shared_task(name="lending.nightly_credit")
def nightly_credit() -> dict[str, int]:
    """Beat, nightly: score every line of every active program as of its last closed day.

    Idempotent: lines already scored for that day by the promoted model are skipped, so a retry
    or an overlapping run changes nothing twice. Does nothing until a model has been promoted.
    """
    results = credit_nightly()
    return {
        "programs": len(results),
        "scored": sum(r.scored for r in results),
        "regraded": sum(r.regraded for r in results),
        "raised": sum(r.increased for r in results),
        "cut": sum(r.decreased for r in results),
        "queued": sum(r.queued for r in results),
    }
