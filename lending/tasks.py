"""Celery tasks of the financing engine. Thin: each calls one service."""

from __future__ import annotations

from celery import shared_task

from .services.reviews import reviews_expire


@shared_task(name="lending.expire_reviews")
def expire_reviews() -> int:
    """Beat: expire review cases past their deadline and release their credit.

    Idempotent and safe to overlap with itself (the service skips rows another run holds).
    """
    return reviews_expire()


# Register the tasks kept in their own modules (Celery autodiscovers only ``tasks``).
from . import tasks_credit, tasks_money  # noqa: E402, F401
