"""Releases by order lines: the quantities of each SKU a hold's releases may still take.

A hold's ``GoodsHoldLine`` rows (one per SKU of the financed order, quantities summed over its
lines of that SKU, priced at the first such line's unit price) are written by the first release
by lines, ``INSERT ... ON CONFLICT DO NOTHING`` so that racing first requests write them once.
The release's transaction takes each SKU's quantity with one conditional UPDATE,
``released_quantity = released_quantity + q WHERE ordered_quantity - released_quantity >= q``,
after the hold's own conditional UPDATE of the value: the hold's row serialises the requests of
one hold, and under READ COMMITTED each waiting UPDATE re-checks its condition against the
committed quantities, so no number of racing requests takes more of a SKU than was ordered. The
CHECK ``hold_line_released_le_ordered`` stands behind it.

The quantities read before the transaction (``hold_lines_left``) only shape a clear 422 for a
request that could never pass; the UPDATE decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import F, Value
from django.db.models.functions import Round
from django.db.models.lookups import GreaterThanOrEqual

from orders.models import SalesOrderLine

from ..models import GoodsHold, GoodsHoldLine
from ..models.goods import QUANTITY_PLACES, quantity

ZERO = Decimal("0.0000")


@dataclass(frozen=True, slots=True)
class SkuLeft:
    """One SKU of a held order: its unit price, quantity ordered and quantity not yet released."""

    unit_price: Decimal
    ordered: Decimal
    left: Decimal


def _order_skus(hold: GoodsHold) -> dict[str, tuple[Decimal, Decimal]]:
    """The financed order's SKUs: (quantity ordered, unit price of its first line)."""
    ordered: dict[str, tuple[Decimal, Decimal]] = {}
    lines = SalesOrderLine.objects.filter(order_id=hold.loan.order_id).order_by("line_no")
    for sku, count, price in lines.values_list("sku", "quantity", "unit_price"):
        total, first_price = ordered.get(sku, (ZERO, price))
        ordered[sku] = (total + count, first_price)
    return ordered


def hold_lines_left(hold: GoodsHold) -> dict[str, SkuLeft]:
    """Each SKU of ``hold``'s order and what of it is not yet released (read, nothing written)."""
    rows = GoodsHoldLine.objects.filter(hold=hold).values_list(
        "sku", "unit_price", "ordered_quantity", "released_quantity"
    )
    known = {sku: SkuLeft(price, ordered, ordered - taken) for sku, price, ordered, taken in rows}
    if known:
        return known
    return {sku: SkuLeft(price, count, count) for sku, (count, price) in _order_skus(hold).items()}


def hold_lines_ensure(hold: GoodsHold) -> None:
    """Write ``hold``'s SKU rows if no release by lines has yet (inside the release's
    transaction; a racing first request's rows win and these are skipped)."""
    if GoodsHoldLine.objects.filter(hold=hold).exists():
        return
    GoodsHoldLine.objects.bulk_create(
        [
            GoodsHoldLine(hold=hold, sku=sku, unit_price=price, ordered_quantity=count)
            for sku, (count, price) in sorted(_order_skus(hold).items())
        ],
        ignore_conflicts=True,
    )


def hold_lines_take(hold: GoodsHold, asked: dict[str, Decimal]) -> bool:
    """Take ``asked`` (SKU -> quantity) from ``hold``'s SKU rows, SKU by SKU in order, each by a
    conditional UPDATE; False as soon as one SKU has not that much left (the caller rolls the
    transaction back). The caller has updated the hold's row in this transaction."""
    for sku, count in sorted(asked.items()):
        left_after = Round(
            F("ordered_quantity") - F("released_quantity") - Value(count, output_field=quantity()),
            precision=QUANTITY_PLACES,
        )
        taken = (
            GoodsHoldLine.objects.filter(hold=hold, sku=sku)
            .filter(GreaterThanOrEqual(left_after, 0))
            .update(released_quantity=F("released_quantity") + count)
        )
        if not taken:
            return False
    return True


def released_by_sku(hold: GoodsHold) -> dict[str, Decimal]:
    """What releases by lines took of each SKU of ``hold`` (empty if none did)."""
    rows = GoodsHoldLine.objects.filter(hold=hold).values_list("sku", "released_quantity")
    return dict(rows)
