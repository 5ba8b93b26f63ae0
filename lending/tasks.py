"""Celery tasks of the financing engine. Thin: each calls one service."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.conf import settings

from scf import clock

from .services.idempotency import idempotency_records_purge
from .services.review_expiry import reviews_expire


@shared_task(name="lending.expire_reviews")
def expire_reviews() -> int:
    """Beat: expire review cases past their deadline and release their credit.

    Idempotent and safe to overlap with itself (the service skips rows another run holds).
    """
    return reviews_expire()


@shared_task(name="lending.purge_idempotency_records")
def purge_idempotency_records() -> int:
    """Beat, daily: forget Idempotency-Key replies older than ``IDEMPOTENCY_RETENTION_DAYS``."""
    retention = dt.timedelta(days=settings.IDEMPOTENCY_RETENTION_DAYS)
    return idempotency_records_purge(created_before=clock.now() - retention)


# Register the tasks kept in their own modules (Celery autodiscovers only ``tasks``).
from . import tasks_credit, tasks_money  # noqa: E402, F401
