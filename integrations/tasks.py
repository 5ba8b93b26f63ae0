"""Celery tasks at the edges. Thin: take ids, call one service."""

from __future__ import annotations

from celery import shared_task

from .feed.pull import due_feed_sources, feed_source_poll


@shared_task(name="integrations.pull_order_feed")
def pull_order_feed(source_id: int) -> dict[str, object]:
    return feed_source_poll(source_id=source_id).__dict__


@shared_task(name="integrations.pull_order_feeds")
def pull_order_feeds() -> int:
    """Beat: queue a poll for every source that is due."""
    due = due_feed_sources()
    for source_id in due:
        pull_order_feed.delay(source_id)
    return len(due)
