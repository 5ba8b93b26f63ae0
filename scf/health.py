"""``GET /healthz``: 200 when the database answers; the broker's state is reported too."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # any failure means "not answering"
        return "unavailable"
    return "ok"


def _broker() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "eager"
    from scf.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=1)
    except Exception:
        return "unavailable"
    return "ok"


def healthz(request: HttpRequest) -> JsonResponse:
    database = _database()
    body = {
        "status": "ok" if database == "ok" else "unavailable",
        "database": database,
        "broker": _broker(),
    }
    return JsonResponse(body, status=200 if database == "ok" else 503)
