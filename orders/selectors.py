"""Reads of orders, enterprises and the order feed's log for APIs and pages."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Max, Prefetch, Q, QuerySet
from django.utils import timezone

from .models import CoreEnterprise, FeedEvent, FeedOutcome, SalesOrder, SalesOrderLine, User

RECENT_REJECTIONS = 10

# The orders pages' sort keys: "-" for largest or newest first; the id breaks ties.
ORDER_SORTS = {
    "-date": ("-order_date", "-id"),
    "date": ("order_date", "id"),
    "-amount": ("-amount", "-id"),
    "amount": ("amount", "id"),
    "number": ("external_id", "id"),
}


def order_list(
    *,
    user: User,
    status: str | None = None,
    search: str = "",
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    sort: str = "",
) -> QuerySet[SalesOrder]:
    """The orders ``user`` may see: ``search`` in the order number, order dates from ``date_from``
    to ``date_to`` (both included), sorted by an ``ORDER_SORTS`` key (default: the model's)."""
    orders = SalesOrder.objects.visible_to(user).select_related("agent", "enterprise")
    if status:
        orders = orders.filter(status=status)
    if search:
        orders = orders.filter(external_id__icontains=search)
    if date_from:
        orders = orders.filter(order_date__gte=date_from)
    if date_to:
        orders = orders.filter(order_date__lte=date_to)
    if sort in ORDER_SORTS:
        orders = orders.order_by(*ORDER_SORTS[sort])
    return orders


def order_get(*, user: User, order_id: int) -> SalesOrder | None:
    """One order the user may see, with its lines; ``None`` for a missing or invisible one."""
    return (
        SalesOrder.objects.visible_to(user)
        .select_related("agent", "enterprise")
        .prefetch_related(Prefetch("lines", queryset=SalesOrderLine.objects.order_by("line_no")))
        .filter(pk=order_id)
        .first()
    )


def enterprise_get(*, code: str) -> CoreEnterprise | None:
    return CoreEnterprise.objects.filter(code=code).first()


def feed_event_list(
    *,
    enterprise_id: int | None = None,
    enterprise_code: str = "",
    outcome: str | None = None,
    channel: str | None = None,
) -> QuerySet[FeedEvent]:
    """The feed's log, newest first: of one enterprise (by id or code) or all, by outcome and
    channel when given. The caller decides whose events a user may read."""
    lookups = {
        "enterprise_id": enterprise_id,
        "enterprise__code": enterprise_code,
        "outcome": outcome,
        "channel": channel,
    }
    wanted = {name: value for name, value in lookups.items() if value not in (None, "")}
    return FeedEvent.objects.select_related("enterprise").filter(**wanted)


@dataclass(frozen=True)
class FeedHealth:
    last_event_at: dt.datetime | None
    last_applied_at: dt.datetime | None
    last_24h: dict[str, int]  # events by outcome
    rejections: list[FeedEvent]  # the latest, newest first


def feed_health(*, events: QuerySet[FeedEvent]) -> FeedHealth:
    """Last event, last applied event, the last 24 hours by outcome, the latest rejections
    (two queries)."""
    since = timezone.now() - dt.timedelta(hours=24)
    summary = events.aggregate(
        last_event_at=Max("received_at"),
        last_applied_at=Max("received_at", filter=Q(outcome=FeedOutcome.APPLIED)),
        **{
            outcome: Count("id", filter=Q(outcome=outcome, received_at__gte=since))
            for outcome in FeedOutcome.values
        },
    )
    rejected = events.filter(outcome=FeedOutcome.REJECTED).order_by("-received_at", "-id")
    return FeedHealth(
        last_event_at=summary["last_event_at"],
        last_applied_at=summary["last_applied_at"],
        last_24h={outcome: summary[outcome] for outcome in FeedOutcome.values},
        rejections=list(rejected[:RECENT_REJECTIONS]),
    )
