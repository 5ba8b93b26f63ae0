"""``GET /healthz``: 200 when the database answers, 503 (with ``Retry-After``) when it does not.

The broker is reported too, and never waited on for more than ``HEALTH_CHECK_BROKER_TIMEOUT``
seconds: a Redis that hangs (frozen, a half-open connection) would otherwise hold the request
until it answers, and a load balancer's health checks would soon hold every sync web worker.
The probe runs on a thread of its own and the request waits for it at most that long; a probe
still running when the next check comes is waited for again rather than started twice, so a
hung broker costs a process one thread, not one per check. A broker that does not answer in
time is ``timeout``, one that refuses ``unavailable``; either makes the status ``degraded``
(still 200: the web tier serves without the broker, the outbox sweepers send what it missed).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from scf.api import DATABASE_RETRY_AFTER_SECONDS


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # any failure means "not answering"
        return "unavailable"
    return "ok"


def _ping_broker() -> None:
    """Connect to the broker and run a command on it; raises if it does not answer. The
    connection's socket timeouts are the probe's own, whatever the publishers use."""
    from scf.celery import app

    timeout = settings.HEALTH_CHECK_BROKER_TIMEOUT
    options = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
    with app.connection_for_write(transport_options=options, connect_timeout=timeout) as conn:
        conn.ensure_connection(max_retries=0, timeout=timeout)


class _Probe:
    """At most one broker probe in flight per process (a forked process starts its own)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0
        self._running: Future[None] | None = None

    def current(self) -> Future[None]:
        with self._lock:
            running = self._running
            if running is None or running.done() or self._pid != os.getpid():
                running = Future()
                thread = threading.Thread(
                    target=self._run, args=(running,), name="healthz-broker", daemon=True
                )
                thread.start()
                self._running, self._pid = running, os.getpid()
            return running

    @staticmethod
    def _run(result: Future[None]) -> None:
        try:
            _ping_broker()
        except BaseException as exc:  # reported as the broker's state, never raised here
            result.set_exception(exc)
        else:
            result.set_result(None)


_probe = _Probe()


def _broker() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "eager"
    try:
        _probe.current().result(timeout=settings.HEALTH_CHECK_BROKER_TIMEOUT)
    except FutureTimeout:
        return "timeout"
    except Exception:
        return "unavailable"
    return "ok"


def healthz(request: HttpRequest) -> JsonResponse:
    database = _database()
    broker = _broker()
    if database != "ok":
        status = "unavailable"
    elif broker in ("ok", "eager"):
        status = "ok"
    else:
        status = "degraded"
    body = {"status": status, "database": database, "broker": broker}
    response = JsonResponse(body, status=200 if database == "ok" else 503)
    if database != "ok":
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response
