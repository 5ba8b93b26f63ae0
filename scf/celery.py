"""The Celery app: configuration from Django settings (CELERY_ namespace), tasks autodiscovered."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections

from scf.logging import task_finished, task_started

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scf.settings.base")


class App(Celery):
    """Celery with socket timeouts on the connections that publish, and only on those.

    A publish (a web process's relay, beat, a task queueing a task) to a Redis that hangs must
    fail in ``BROKER_CONNECT_TIMEOUT`` / ``BROKER_READ_TIMEOUT`` (kombu's Redis transport
    waits forever without them); Celery retries it (``task_publish_retry_policy``), then the
    outbox sweepers send what was not sent. A worker's consuming connection keeps kombu's
    defaults: it has nothing to do but wait for Redis, and with a short read timeout a worker
    (Celery 5.7) could stop consuming for good after Redis hung: its acks timed out and its
    consumer never reconnected (``chaos/redis_freeze.py``). Celery's producer pool,
    beat and ``send_task`` connect through ``connection_for_write``; consumers through
    ``connection_for_read``.
    """

    def connection_for_write(self, url: str | None = None, **kwargs: Any) -> Any:
        from django.conf import settings

        options = {
            "socket_connect_timeout": settings.BROKER_CONNECT_TIMEOUT,
            "socket_timeout": settings.BROKER_READ_TIMEOUT,
            **(kwargs.pop("transport_options", None) or {}),
        }
        return super().connection_for_write(url, transport_options=options, **kwargs)


app = App("scf")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Task ids on log records (scf.logging); connected strongly, the handlers are module functions.
task_prerun.connect(task_started, weak=False)
task_postrun.connect(task_finished, weak=False)


def drop_dead_database_connections(sender: Task | None = None, **kwargs: Any) -> None:
    """Before each task a worker runs: Django's rule for the start of a request.

    The worker keeps its database connection across tasks (``CELERY_DB_REUSE_MAX``), and
    Celery's Django fixup then closes it only every so many tasks, dead or alive: after a
    PostgreSQL restart every task failed on the dead connection ("connection already closed")
    for a thousand tasks (found by ``chaos/soak.sh``). ``close_old_connections`` drops a
    connection that has had an error and no longer answers (and one past ``CONN_MAX_AGE``), so
    the next query reconnects. Eager tasks run inside the caller's transaction: left alone.
    """
    if sender is None or getattr(sender.request, "is_eager", False):
        return
    close_old_connections()


task_prerun.connect(drop_dead_database_connections, weak=False)
