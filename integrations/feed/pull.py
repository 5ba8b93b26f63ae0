"""The pull adapter: poll a sales system's REST endpoint for orders, page by page, with a cursor.

Protocol expected of the sales system: ``GET <url>?cursor=<c>&limit=<n>`` returns
``{"orders": [...], "next_cursor": "<c2>" | null}``. ``null`` (or the same cursor) means caught up.
A page has the limits of a bulk request: ``ORDER_BULK_MAX_BYTES``, the JSON nesting cap, and
the caps on orders and lines; a page past them is an error (the cursor stays).
A lease (a conditional update) keeps two workers from polling one source at once.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone

from orders.models import FeedChannel
from orders.services.ingest import orders_ingest
from scf import crypto
from scf.errors import ApplicationError
from scf.parsers import json_parse

from ..models import OrderFeedSource
from .follow_up import feed_applied_follow_up

logger = logging.getLogger(__name__)

LEASE = dt.timedelta(minutes=5)
HTTP_TIMEOUT_SECONDS = 10
MAX_CURSOR_LENGTH = 500


@dataclass(frozen=True)
class PollResult:
    pages: int = 0
    created: int = 0
    updated: int = 0
    stale: int = 0
    rejected: int = 0
    error: str = ""


class FeedPage:
    def __init__(self, orders: list[Any], next_cursor: str | None) -> None:
        self.orders = orders
        self.next_cursor = next_cursor


def _capped_body(response: requests.Response, limit: int) -> bytes:
    """The reply's body, refused past ``limit`` bytes (as a bulk request's) without reading on."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=64 * 1024):
        size += len(chunk)
        if size > limit:
            raise ValueError(f"The page is larger than {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def _fetch(source: OrderFeedSource, cursor: str) -> FeedPage:
    headers = {"Accept": "application/json"}
    if source.auth_header_encrypted:
        headers["Authorization"] = crypto.decrypt(source.auth_header_encrypted)
    with requests.get(
        source.url,
        params={"cursor": cursor, "limit": str(source.page_size)},
        headers=headers,
        timeout=HTTP_TIMEOUT_SECONDS,
        stream=True,
    ) as response:
        response.raise_for_status()
        body = json_parse(_capped_body(response, settings.ORDER_BULK_MAX_BYTES))
    if not isinstance(body, dict) or not isinstance(body.get("orders"), list):
        raise ValueError('The feed did not return {"orders": [...]}.')
    next_cursor = body.get("next_cursor")
    if next_cursor is not None and (
        not isinstance(next_cursor, str) or len(next_cursor) > MAX_CURSOR_LENGTH
    ):
        raise ValueError(
            f"next_cursor must be a string (at most {MAX_CURSOR_LENGTH} chars) or null."
        )
    return FeedPage(body["orders"], next_cursor)


def _take_lease(source_id: int) -> dt.datetime | None:
    """Lease the source for one poll (a conditional UPDATE); the lease's expiry, or None."""
    now = timezone.now()
    until = now + LEASE
    taken = (
        OrderFeedSource.objects.filter(pk=source_id, enabled=True)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=until)
    )
    return until if taken else None


def _poll_pages(source_id: int, max_pages: int, totals: dict[str, int]) -> None:
    for _ in range(max_pages):
        source = OrderFeedSource.objects.select_related("enterprise").get(pk=source_id)
        page = _fetch(source, source.cursor)
        with transaction.atomic():
            if page.orders:
                result = orders_ingest(
                    enterprise=source.enterprise,
                    payloads=page.orders,
                    channel=FeedChannel.PULL,
                    atomic=False,
                    event_id=source.cursor or "start",
                )
                for key, value in result.counts().items():
                    totals[key] += value
                feed_applied_follow_up(applied=result.applied)
            done = not page.next_cursor or page.next_cursor == source.cursor
            if page.next_cursor:
                source.cursor = page.next_cursor
            source.last_polled_at = timezone.now()
            source.last_error = ""
            source.save(update_fields=["cursor", "last_polled_at", "last_error"])
        totals["pages"] += 1
        if done:
            return


def feed_source_poll(*, source_id: int, max_pages: int = 100) -> PollResult:
    """Poll one source until it is caught up (or ``max_pages``); apply each page exactly once.

    The cursor moves in the same transaction as the page's orders. A failure records
    ``last_error`` and leaves the cursor where it was, so the next poll retries that page.
    """
    lease = _take_lease(source_id)
    if lease is None:
        enabled = OrderFeedSource.objects.filter(pk=source_id, enabled=True).exists()
        return PollResult(error="busy" if enabled else "disabled")
    totals = {"pages": 0, "created": 0, "updated": 0, "stale": 0, "rejected": 0}
    error = ""
    try:
        _poll_pages(source_id, max_pages, totals)
    except (requests.RequestException, ValueError, ApplicationError, DatabaseError) as exc:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        logger.warning("order feed poll failed", extra={"source_id": source_id, "error": error})
        OrderFeedSource.objects.filter(pk=source_id).update(
            last_error=error, last_polled_at=timezone.now()
        )
    finally:
        # Release only our own lease: after an overrun another poll may hold a newer one.
        OrderFeedSource.objects.filter(pk=source_id, lease_until=lease).update(lease_until=None)
    return PollResult(error=error, **totals)


def due_feed_sources(now: dt.datetime | None = None) -> list[int]:
    now = now or timezone.now()
    due = []
    for source in OrderFeedSource.objects.filter(enabled=True).only(
        "id", "last_polled_at", "poll_interval_seconds"
    ):
        last = source.last_polled_at
        if last is None or (now - last).total_seconds() >= source.poll_interval_seconds:
            due.append(source.pk)
    return due
