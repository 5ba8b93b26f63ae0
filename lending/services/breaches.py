"""Release breaches: goods the order feed reports shipped or delivered beyond what was released.

* **Detection** (``release_breaches_record``), called by the order feed after it applied orders
  (``integrations.feed.follow_up``): one set-based INSERT of a ``ReleaseBreach`` for every
  applied order whose goods were shipped beyond what was released (``shipped_figures``):
  - where the order's lines carry ``shipped_quantity`` (the feed may send it per line; a line
    without it counts whole once the order is shipped or delivered, else not at all), each SKU
    shipped beyond what releases by lines took of it, valued at the price releases use, less
    the value released without naming lines (which may cover any SKU);
  - else, once the order is ``shipped`` or ``delivered``, its whole value less the value
    released, as the feed reports the order and not parts of it.
  ``reported_value`` is what was shipped, ``excess_value`` the part not released, ``lines`` the
  per-SKU figures when the feed gave quantities. The partial unique index (one open breach per
  order) makes a repeat harmless (``ON CONFLICT DO NOTHING``; the open breach takes the latest
  figures); a breach risk staff resolved is not raised again for the same released and
  shipped values.
* **While a breach is open** the engine refers the agent's next requests
  (``release_breach_open``, ``lending.engine``).
* **Resolving** (``release_breach_resolve``): risk staff, with a note; audited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, Sum

from orders.models import OrderStatus, SalesOrderLine, User
from scf import clock
from scf.errors import Conflict, PermissionDenied, ValidationFailed
from scf.money import CENT

from ..locks import breach_lock
from ..models import (
    BreachStatus,
    GoodsHold,
    GoodsHoldLine,
    HoldStatus,
    Release,
    ReleaseBreach,
    ReleaseStatus,
)
from .audit import audit_record

SHIPPED = (OrderStatus.SHIPPED, OrderStatus.DELIVERED)
ZERO = Decimal("0.00")
MAX_NOTE = 2000


class BreachNotOpen(Conflict):
    code = "breach_not_open"


@dataclass(frozen=True, slots=True)
class Shipped:
    """What the feed reports shipped of a held order, and how much of it was not released."""

    reported: Decimal
    excess: Decimal
    lines: list[dict[str, str]]


@dataclass(slots=True)
class _Sku:
    unit_price: Decimal
    shipped: Decimal = Decimal(0)


def _order_lines(order_ids: list[int]) -> dict[int, list[tuple[str, Decimal, Decimal, Any]]]:
    rows = SalesOrderLine.objects.filter(order_id__in=order_ids).order_by("order_id", "line_no")
    lines: dict[int, list[tuple[str, Decimal, Decimal, Any]]] = {}
    for order_id, *line in rows.values_list(
        "order_id", "sku", "quantity", "unit_price", "shipped_quantity"
    ):
        lines.setdefault(order_id, []).append(tuple(line))  # type: ignore[arg-type]
    return lines


def _by_lines(
    hold: GoodsHold,
    lines: list[tuple[str, Decimal, Decimal, Any]],
    released: dict[str, Decimal],
    by_line_value: Decimal,
) -> Shipped:
    """Shipped quantities by line: each SKU shipped beyond what releases by lines took of it,
    at the price releases value it; value released without naming lines covers any SKU."""
    whole = hold.loan.order.status in SHIPPED
    skus: dict[str, _Sku] = {}
    for sku, ordered, price, shipped in lines:
        row = skus.setdefault(sku, _Sku(price))
        row.shipped += ordered if shipped is None and whole else (shipped or 0)
    reported = excess_by_sku = ZERO
    report: list[dict[str, str]] = []
    for sku, row in skus.items():
        taken = released.get(sku, Decimal(0))
        beyond = max(Decimal(0), row.shipped - taken)
        value = (beyond * row.unit_price).quantize(CENT, ROUND_HALF_EVEN)
        reported += (row.shipped * row.unit_price).quantize(CENT, ROUND_HALF_EVEN)
        excess_by_sku += value
        report.append(
            {
                "sku": sku,
                "shipped_quantity": str(row.shipped),
                "released_quantity": str(taken),
                "excess_quantity": str(beyond),
                "excess_value": f"{value:.2f}",
            }
        )
    unattributed = hold.released_value - by_line_value
    return Shipped(reported, max(ZERO, excess_by_sku - unattributed), report)


def shipped_figures(holds: list[GoodsHold]) -> dict[int, Shipped]:
    """For each hold (its order selected), what the feed reports shipped and the excess: by line
    where the order's lines carry shipped quantities, else the whole order once it is shipped or
    delivered. Holds with nothing shipped are left out."""
    lines = _order_lines([hold.loan.order_id for hold in holds])
    released: dict[int, dict[str, Decimal]] = {}
    rows = GoodsHoldLine.objects.filter(hold__in=holds)
    for hold_id, sku, quantity in rows.values_list("hold_id", "sku", "released_quantity"):
        released.setdefault(hold_id, {})[sku] = quantity
    by_line = dict(
        Release.objects.filter(hold__in=holds, status=ReleaseStatus.AUTHORISED)
        .exclude(lines=[])
        .order_by()
        .values("hold_id")
        .annotate(total=Sum("value"))
        .values_list("hold_id", "total")
    )
    figures: dict[int, Shipped] = {}
    for hold in holds:
        order = hold.loan.order
        order_lines = lines.get(order.pk, [])
        if any(line[3] is not None for line in order_lines):
            value = by_line.get(hold.pk, ZERO)
            figures[hold.pk] = _by_lines(hold, order_lines, released.get(hold.pk, {}), value)
        elif order.status in SHIPPED:
            figures[hold.pk] = Shipped(order.amount, order.amount - hold.released_value, [])
    return figures


def _candidates(ids: list[int]) -> list[GoodsHold]:
    shipping = SalesOrderLine.objects.filter(
        order_id=OuterRef("loan__order_id"), shipped_quantity__gt=0
    )
    return list(
        GoodsHold.objects.filter(
            loan__order_id__in=ids, status__in=(HoldStatus.HELD, HoldStatus.PARTLY_RELEASED)
        )
        .filter(Q(loan__order__status__in=SHIPPED) | Exists(shipping))
        .select_related("loan__order", "loan__program")
        .order_by("pk")
    )


def release_breaches_record(
    *, order_ids: Iterable[int], at: dt.datetime | None = None
) -> list[ReleaseBreach]:
    """Record a breach for each of these orders shipped beyond what was released; the breaches
    recorded now (none for an order that already has an open one: that one's figures follow
    the feed)."""
    ids = sorted(set(order_ids))
    holds = _candidates(ids) if ids else []
    figures = shipped_figures(holds) if holds else {}
    breaches = {h.loan.order_id: (h, figures[h.pk]) for h in holds if figures.get(h.pk)}
    breaches = {k: v for k, v in breaches.items() if v[1].excess > 0}
    if not breaches:
        return []
    resolved = set(
        ReleaseBreach.objects.filter(
            order_id__in=breaches, status=BreachStatus.RESOLVED
        ).values_list("order_id", "released_value", "reported_value")
    )
    now = at or clock.now()
    candidates = [
        ReleaseBreach(
            hold=hold,
            loan=hold.loan,
            agent_id=hold.agent_id,
            enterprise_id=hold.loan.program.enterprise_id,
            order=hold.loan.order,
            order_status=hold.loan.order.status,
            reported_value=shipped.reported,
            released_value=hold.released_value,
            excess_value=shipped.excess,
            lines=shipped.lines,
            detected_at=now,
        )
        for order_id, (hold, shipped) in breaches.items()
        if (order_id, hold.released_value, shipped.reported) not in resolved
    ]
    if not candidates:
        return []
    _open_breaches_follow(candidates)
    ReleaseBreach.objects.bulk_create(candidates, ignore_conflicts=True)
    return list(
        ReleaseBreach.objects.filter(
            order_id__in=[c.order_id for c in candidates],
            status=BreachStatus.OPEN,
            detected_at=now,
        )
    )


def _open_breaches_follow(candidates: list[ReleaseBreach]) -> None:
    """An order's open breach takes the feed's latest figures (more shipped, more released)."""
    fields = ("order_status", "reported_value", "released_value", "excess_value", "lines")
    for candidate in candidates:
        ReleaseBreach.objects.filter(order_id=candidate.order_id, status=BreachStatus.OPEN).update(
            **{field: getattr(candidate, field) for field in fields}
        )


@transaction.atomic
def release_breach_resolve(*, breach_id: int, actor: User, note: str) -> ReleaseBreach:
    """Close an open breach with risk staff's note (the agent's requests are no longer referred
    for it). Raises ``PermissionDenied``, ``ValidationFailed`` (no note), ``BreachNotOpen``."""
    if not getattr(actor, "is_bank_staff", False):
        raise PermissionDenied("Only the bank's risk staff resolve a release breach.")
    cleaned = note.strip() if isinstance(note, str) else ""
    if not cleaned or len(cleaned) > MAX_NOTE:
        message = f"Say how it was resolved (1 to {MAX_NOTE} characters)."
        raise ValidationFailed(message, fields={"note": [message]})
    breach = breach_lock(breach_id)
    if breach.status != BreachStatus.OPEN:
        raise BreachNotOpen(f"Breach {breach.pk} is already {breach.status}.")
    breach.status = BreachStatus.RESOLVED
    breach.resolved_by = actor
    breach.resolved_at = clock.now()
    breach.note = cleaned
    breach.save(update_fields=["status", "resolved_by", "resolved_at", "note"])
    audit_record(
        actor=actor,
        action="release_breach_resolved",
        obj=breach,
        before={"status": BreachStatus.OPEN},
        after={"status": breach.status, "order": breach.order.external_id},
        note=cleaned,
    )
    return breach
