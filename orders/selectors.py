"""Reads of orders for APIs and pages."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from .models import SalesOrder, SalesOrderLine, User


def order_list(*, user: User, status: str | None = None) -> QuerySet[SalesOrder]:
    orders = SalesOrder.objects.visible_to(user).select_related("agent", "enterprise")
    if status:
        orders = orders.filter(status=status)
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
