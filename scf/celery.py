"""The Celery app: configuration from Django settings (CELERY_ namespace), tasks autodiscovered."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun
from django.db import close_old_connections

from scf.logging import task_finished, task_started

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scf.settings.base")

app = Celery("scf")
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
