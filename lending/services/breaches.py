"""Release breaches: goods the order feed reports shipped or delivered beyond what was released.

* **Detection** (``release_breaches_record``), called by the order feed after it applied orders
  (``integrations.tripartite.breaches``): one set-based INSERT of a ``ReleaseBreach`` for every
  applied order now ``shipped`` or ``delivered`` whose goods hold has released less than the
  order's value. The order's whole value counts as reported (the feed reports the order, not
  parts of it). The partial unique index (one open breach per order) makes a repeat harmless
  (``ON CONFLICT DO NOTHING``); a breach risk staff resolved is not raised again for the same
  released value.
* **While a breach is open** the engine refers the agent's next requests
  (``release_breach_open``, ``lending.engine``).
* **Resolving** (``release_breach_resolve``): risk staff, with a note; audited.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.db.models import Exists, F, OuterRef

from orders.models import OrderStatus, User
from scf import clock
from scf.errors import Conflict, PermissionDenied, ValidationFailed

from ..locks import breach_lock
from ..models import BreachStatus, GoodsHold, HoldStatus, ReleaseBreach
from .audit import audit_record

SHIPPED = (OrderStatus.SHIPPED, OrderStatus.DELIVERED)
MAX_NOTE = 2000


class BreachNotOpen(Conflict):
    code = "breach_not_open"


def release_breaches_record(*, order_ids: Iterable[int]) -> list[ReleaseBreach]:
    """Record a breach for each of these orders shipped or delivered beyond what was released;
    the breaches recorded now (none for an order that already has an open one)."""
    ids = sorted(set(order_ids))
    if not ids:
        return []
    resolved_same = ReleaseBreach.objects.filter(
        order_id=OuterRef("loan__order_id"),
        status=BreachStatus.RESOLVED,
        released_value=OuterRef("released_value"),
    )
    holds = (
        GoodsHold.objects.filter(
            loan__order_id__in=ids,
            loan__order__status__in=SHIPPED,
            status__in=(HoldStatus.HELD, HoldStatus.PARTLY_RELEASED),
            released_value__lt=F("loan__order__amount"),
        )
        .filter(~Exists(resolved_same))
        .select_related("loan__order", "loan__program")
    )
    now = clock.now()
    candidates = [
        ReleaseBreach(
            hold=hold,
            loan=hold.loan,
            agent_id=hold.agent_id,
            enterprise_id=hold.loan.program.enterprise_id,
            order=hold.loan.order,
            order_status=hold.loan.order.status,
            reported_value=hold.loan.order.amount,
            released_value=hold.released_value,
            detected_at=now,
        )
        for hold in holds
    ]
    if not candidates:
        return []
    ReleaseBreach.objects.bulk_create(candidates, ignore_conflicts=True)
    return list(
        ReleaseBreach.objects.filter(
            order_id__in=[c.order_id for c in candidates],
            status=BreachStatus.OPEN,
            detected_at=now,
        )
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
