"""What every feed channel (webhook, bulk, CSV, pull) does after the ingestion applied orders.

* cancelled orders stop or accelerate their loans (``integrations.feed.cancellations``);
* orders shipped (or delivered, or with shipped quantities on their lines) beyond the goods
  released for them under a tripartite agreement are recorded as release breaches
  (``lending.services.breaches``, which picks the financed, shipping ones in one query).

Each runs in its own savepoint; a database error is logged and not raised (the orders are
stored; the cancellation sweep catches up on cancellations, the next feed message on breaches).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from django.db import DatabaseError, transaction

from lending.services.breaches import release_breaches_record
from orders.models import OrderStatus

from .cancellations import feed_cancellations_apply

logger = logging.getLogger(__name__)


def feed_applied_follow_up(
    *, applied: Iterable[tuple[int, str]], at: dt.datetime | None = None
) -> None:
    """``at``: when the breaches are detected (default now)."""
    pairs = list(applied)
    feed_cancellations_apply(applied=pairs)
    # A confirmed order may carry shipped quantities on its lines: only cancellations are out.
    shipped = sorted({pk for pk, status in pairs if status != OrderStatus.CANCELLED})
    if not shipped:
        return
    try:
        with transaction.atomic():
            release_breaches_record(order_ids=shipped, at=at)
    except DatabaseError:
        logger.exception("release breaches not checked", extra={"orders": shipped})
