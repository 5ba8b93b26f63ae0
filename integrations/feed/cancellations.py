"""After the order feed applied orders: cancelled ones stop or accelerate their loans.

Called by every feed channel (webhook, bulk, CSV, pull) with the ``(order id, status)`` pairs
the ingestion applied. The loans are changed, and the events about them recorded, in one
transaction (a savepoint inside the pull feed's page transaction). A database error is logged
and not raised: the order itself is stored, and ``integrations.sweep_cancelled_orders`` applies
the cancellation on its next run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import DatabaseError, transaction

from lending.services.acceleration import CancellationOutcome, orders_cancelled
from orders.models import OrderStatus

from ..events import loan_events_sweep

logger = logging.getLogger(__name__)


def feed_cancellations_apply(*, applied: Iterable[tuple[int, str]]) -> int:
    """Apply the cancellations among ``applied``; how many loans changed."""
    order_ids = sorted({pk for pk, status in applied if status == OrderStatus.CANCELLED})
    if not order_ids:
        return 0
    try:
        with transaction.atomic():
            results = orders_cancelled(order_ids=order_ids)
            changed = [r.loan_id for r in results if r.outcome != CancellationOutcome.UNCHANGED]
            if changed:
                loan_events_sweep(loan_ids=changed)
    except DatabaseError:
        logger.exception("cancelled orders not applied to loans yet", extra={"orders": order_ids})
        return 0
    return len(changed)
