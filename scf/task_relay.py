"""Publishing a task per batch of values, from a background thread of the web process.

Why: every approved finance click queues its payment after commit. One Celery message per
click is a large share of the click's CPU in the web worker (Celery builds the message, kombu
builds a Redis client for each publish), and the flash crowd is exactly when the web tier has no
CPU to spare (docs/performance.md). A ``BatchRelay`` takes the click's value (the
disbursement id) in a queue and returns at once; its thread sends one message for every batch
gathered within ``linger`` seconds (at most ``max_batch`` values; any more waiting then go at once
in further batches). A publish costs about the same whatever the batch, so a longer linger
means fewer publishes per payment; the default (100 ms) is short next to the payments' own bank
calls. The thread sleeps through the linger rather than
waking for each value put (each wake-up takes the GIL from the request thread).

What it does not change: the row the value names is the durable outbox, written in the click's
transaction. A value whose message is never sent (the process dies within ``linger``, the
broker is down) is found by the sweeper, as any lost message is. The relay is
for a real broker only: with eager Celery (the demo, most tests) callers run the task in place.

The thread is started on the first ``put`` in each process (gunicorn forks its workers after
import), is a daemon, and sends what is left when the interpreter exits normally.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


class BatchRelay:
    """Calls ``send(batch)`` from a background thread with the values ``put`` gathered."""

    def __init__(
        self, name: str, send: Callable[[list[Any]], None], *, linger: float, max_batch: int
    ) -> None:
        if linger < 0 or max_batch < 1:
            raise ValueError("linger must be >= 0 and max_batch >= 1")
        self.name = name
        self._send = send
        self.linger = linger
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._pid = -1
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._idle = threading.Condition(self._lock)
        self._pending = 0  # values put and not yet handed to ``send`` (or dropped)
        self._thread: threading.Thread | None = None

    def put(self, value: Any) -> None:
        """Queue ``value`` for the next batch; never blocks, never raises for the broker."""
        with self._lock:
            if self._pid != os.getpid():  # first use in this process (or after a fork)
                self._start()
            self._pending += 1
        self._queue.put(value)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every value put so far was sent (or failed to send); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending and self._pid == os.getpid():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def _start(self) -> None:
        self._pid = os.getpid()
        self._queue = queue.SimpleQueue()
        self._pending = 0
        self._thread = threading.Thread(target=self._run, name=f"relay-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            # Sleep through the linger rather than wait on the queue for each value: a thread
            # blocked in ``get`` is woken by every ``put``, and each wake-up takes the GIL from
            # the request thread (a futex round and two context switches per click).
            if self.linger:
                time.sleep(self.linger)
            self._deliver_waiting([first])

    def _deliver_waiting(self, batch: list[Any]) -> None:
        """Send ``batch`` with every value waiting now, ``max_batch`` at a time."""
        while True:
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    if batch:
                        self._deliver(batch)
                    return
            self._deliver(batch)
            batch = []

    def _deliver(self, batch: list[Any]) -> None:
        try:
            self._send(batch)
        except Exception as exc:  # the outbox sweeper sends these later
            logger.warning(
                "relay %s could not send %d values; the sweeper will",
                self.name,
                len(batch),
                extra={"error": type(exc).__name__, "values": batch[:20]},
            )
        finally:
            with self._idle:
                self._pending -= len(batch)
                self._idle.notify_all()

    def drain(self) -> None:
        """Send whatever is queued now, in this thread (at interpreter exit)."""
        if self._pid == os.getpid():
            self._deliver_waiting([])


_relays: list[BatchRelay] = []


def relay(
    name: str, send: Callable[[list[Any]], None], *, linger: float, max_batch: int
) -> BatchRelay:
    """A ``BatchRelay`` whose queue is sent at normal interpreter exit."""
    made = BatchRelay(name, send, linger=linger, max_batch=max_batch)
    _relays.append(made)
    return made


@atexit.register
def _drain_all() -> None:
    for each in _relays:
        each.drain()
