"""Reads of orders for APIs and pages."""

from __future__ import annotations

import datetime as dt

from django.db.models import Prefetch, QuerySet

from .models import SalesOrder, SalesOrderLine, User

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
