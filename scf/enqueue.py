"""Queueing Celery tasks by name: the one way every app queues work for a worker.

By name, so that the code that queues a task never imports the module that defines it (a task
module imports the services it calls, and dependencies run integrations -> lending -> orders ->
scf). Each app names its own tasks (``@shared_task(name=...)`` in its ``tasks`` modules); where one
app queues a task another app implements, the project's settings name it (``DISBURSEMENT_TASK``).

Work that a transaction creates is queued after it commits (``enqueue_on_commit``): a worker
never sees a row that is not there yet, and a rolled-back transaction queues nothing. A failed
publish is logged, not raised (``robust``): the row written in the transaction is the outbox,
and the app's sweeper sends it later.
"""

from __future__ import annotations

import threading
from functools import partial
from typing import Any

from django.db import transaction

from scf.celery import app
from scf.task_relay import BatchRelay, relay


def enqueue(name: str, args: list[Any]) -> None:
    """Queue task ``name`` now. ``send_task`` always goes to the broker, even in eager mode (the
    demo, most tests), where nothing would consume it: there the registered task is applied
    in-process instead."""
    if not app.conf.task_always_eager:
        app.send_task(name, args=args)
        return
    if name not in app.tasks:
        # Autodiscovery, as a worker does at start; one thread at a time, or a second thread
        # finds the task module half imported and its task not yet registered.
        with _DISCOVERY_LOCK:
            if name not in app.tasks:
                app.loader.import_default_modules()
    app.tasks[name].apply_async(args=args)


_DISCOVERY_LOCK = threading.Lock()


def enqueue_on_commit(name: str, args: list[Any], *, relay: BatchRelay | None = None) -> None:
    """Queue task ``name`` once the current transaction commits (at once outside one).

    With ``relay`` and a real broker, the task's one argument goes to that relay instead, whose
    thread sends it in a batch message (``scf.task_relay``); eager Celery runs ``name`` in place.
    """
    # A lambda, not a partial: a robust hook that raises is logged by its __qualname__.
    transaction.on_commit(lambda: _after_commit(name, args, relay), robust=True)


def _after_commit(name: str, args: list[Any], batches: BatchRelay | None) -> None:
    if batches is not None and not app.conf.task_always_eager:
        batches.put(args[0])
    else:
        enqueue(name, args)


def batch_relay(name: str, task: str, *, linger: float, max_batch: int) -> BatchRelay:
    """A relay whose thread publishes task ``task`` once per batch, the batch (a list of the
    values put) its one argument. Always to the broker: a relay is for a real broker only."""
    return relay(name, partial(_publish_batch, task), linger=linger, max_batch=max_batch)


def _publish_batch(task: str, batch: list[Any]) -> None:
    app.send_task(task, args=[batch])
