"""One order-feed event (the webhook): ``order_event_ingest``, around the batch's write.

The event id is claimed by inserting its ``FeedEvent`` under a partial unique constraint, so a
replayed or concurrently repeated event is a duplicate whatever the timing. An ``order.cancelled``
event may carry only the order's id and version (a cancellation of a stored order); any other
event carries the whole order, parsed like a batch's (``order_parse``) and written by
``orders_write``. Every rejection is recorded in the feed log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from scf.errors import ValidationFailed

from ..models import CoreEnterprise, FeedEvent, FeedOutcome, OrderStatus, SalesOrder
from .ingest import EnterpriseMismatch, agents_by_code, orders_write
from .parse import OrderInput, OrderInvalid, order_parse

EVENT_TYPES = ("order.upserted", "order.cancelled")


@dataclass(frozen=True)
class EventResult:
    status: str  # applied | duplicate | stale
    order_id: int | None = None
    order_status: str | None = None


def order_event_ingest(*, enterprise: CoreEnterprise, channel: str, event: object) -> EventResult:
    """Apply one feed event (``{"event_id", "type", "order"}``) exactly once.

    Raises ``ValidationFailed`` (422, with field errors) for an invalid event; the rejection is
    recorded in the feed log. Returns ``applied``, ``duplicate`` (event id seen before) or
    ``stale`` (an older or equal version than stored).
    """
    event_id, event_type, payload = _event_fields(enterprise, channel, event)
    try:
        if event_type == "order.cancelled" and _is_cancel_only(payload):
            order = None
        else:
            force = OrderStatus.CANCELLED if event_type == "order.cancelled" else None
            order = order_parse(payload, force_status=force)
            if order.enterprise_code is not None and order.enterprise_code != enterprise.code:
                raise EnterpriseMismatch(
                    "This order is for another enterprise.",
                    fields={
                        "enterprise_code": ["Orders can only be sent for your own enterprise."]
                    },
                )
            if not agents_by_code(enterprise, {order.agent_code}):
                raise OrderInvalid(
                    {"agent_code": [f"Unknown agent {order.agent_code!r} for this enterprise."]}
                )
    except OrderInvalid as exc:
        _reject(enterprise, channel, event_id, event_type, payload, "invalid_order", str(exc))
        raise ValidationFailed(
            "The order is invalid.", code="invalid_order", fields=exc.fields
        ) from None
    try:
        return _apply_event(enterprise, channel, event_id, event_type, payload, order)
    except OrderInvalidForCancel as exc:
        _reject(enterprise, channel, event_id, event_type, payload, exc.code, str(exc.fields))
        raise


def _apply_event(
    enterprise: CoreEnterprise,
    channel: str,
    event_id: str,
    event_type: str,
    payload: dict[str, Any],
    order: OrderInput | None,
) -> EventResult:
    with transaction.atomic():
        try:
            with transaction.atomic():
                claim = FeedEvent.objects.create(
                    enterprise=enterprise,
                    channel=channel,
                    event_id=event_id,
                    event_type=event_type,
                    outcome=FeedOutcome.APPLIED,
                    external_id=str(payload.get("external_id", ""))[:64],
                    order_version=payload.get("version") if order else _int(payload),
                )
        except IntegrityError:
            FeedEvent.objects.create(
                enterprise=enterprise,
                channel=channel,
                event_id=event_id,
                event_type=event_type,
                outcome=FeedOutcome.DUPLICATE,
                external_id=str(payload.get("external_id", ""))[:64],
                detail="Event id already processed.",
            )
            return EventResult("duplicate")
        if order is None:
            result = _cancel_only(enterprise, payload)
        else:
            written = orders_write(enterprise, [(0, order)])
            result = (
                EventResult("applied", written.applied[0][0], written.applied[0][1])
                if written.applied
                else EventResult("stale")
            )
        if result.status == "stale":
            claim.outcome = FeedOutcome.STALE
            claim.detail = "An equal or newer version is already stored."
            claim.save(update_fields=["outcome", "detail"])
    return result


def _int(payload: dict[str, Any]) -> int | None:
    version = payload.get("version")
    return version if isinstance(version, int) and not isinstance(version, bool) else None


def _event_fields(
    enterprise: CoreEnterprise, channel: str, event: object
) -> tuple[str, str, dict[str, Any]]:
    errors: dict[str, list[str]] = {}
    if not isinstance(event, dict):
        raise ValidationFailed(
            "The event must be a JSON object.",
            code="invalid_event",
            fields={"non_field_errors": ["Expected a JSON object."]},
        )
    event_id = event.get("event_id")
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > 128:
        errors["event_id"] = ["A non-empty string of at most 128 characters is required."]
    event_type = event.get("type")
    if event_type not in EVENT_TYPES:
        errors["type"] = [f"Must be one of: {', '.join(EVENT_TYPES)}."]
    payload = event.get("order")
    if not isinstance(payload, dict):
        errors["order"] = ["An order object is required."]
    if errors:
        _reject(
            enterprise,
            channel,
            str(event_id or "")[:128],
            str(event_type or "")[:32],
            payload if isinstance(payload, dict) else {},
            "invalid_event",
            "; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()),
        )
        raise ValidationFailed("The event is invalid.", code="invalid_event", fields=errors)
    assert isinstance(payload, dict) and isinstance(event_id, str) and isinstance(event_type, str)
    return event_id.strip(), event_type, payload


def _is_cancel_only(payload: dict[str, Any]) -> bool:
    return "amount" not in payload and "lines" not in payload


def _cancel_only(enterprise: CoreEnterprise, payload: dict[str, Any]) -> EventResult:
    external_id = payload.get("external_id")
    version = _int(payload)
    fields: dict[str, list[str]] = {}
    if not isinstance(external_id, str) or not external_id:
        fields["external_id"] = ["This field is required."]
    if version is None or version < 1:
        fields["version"] = ["A positive integer version is required."]
    if fields:
        raise OrderInvalidForCancel(fields)
    order = (
        SalesOrder.objects.select_for_update()
        .filter(enterprise=enterprise, external_id=external_id)
        .first()
    )
    if order is None:
        raise OrderInvalidForCancel({"external_id": ["No such order to cancel."]})
    assert version is not None
    if order.version >= version:
        return EventResult("stale")
    order.status = OrderStatus.CANCELLED
    order.version = version
    order.updated_at = timezone.now()
    order.save(update_fields=["status", "version", "updated_at"])
    return EventResult("applied", order.pk, order.status)


class OrderInvalidForCancel(ValidationFailed):
    code = "invalid_order"

    def __init__(self, fields: dict[str, list[str]]) -> None:
        super().__init__("The cancellation is invalid.", fields=fields)


def _reject(
    enterprise: CoreEnterprise,
    channel: str,
    event_id: str,
    event_type: str,
    payload: dict[str, Any],
    code: str,
    detail: str,
) -> None:
    external_id = payload.get("external_id")
    FeedEvent.objects.create(
        enterprise=enterprise,
        channel=channel,
        event_id=event_id,
        event_type=event_type,
        outcome=FeedOutcome.REJECTED,
        error_code=code,
        detail=detail[:2000],
        external_id=str(external_id)[:64] if isinstance(external_id, str) else "",
    )
