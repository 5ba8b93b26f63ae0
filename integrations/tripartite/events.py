"""Outbound events of the tripartite agreement: ``release.available`` and ``claim.raised``.

Like the loan events (``integrations.events``), they are found by comparing state with the
events already recorded, in one set-based query each, so lending emits nothing itself:

* ``release.available``: a goods hold with goods paid for and not yet released
  (``releasable_value > released_value``) whose current releasable value has not been announced
  (no ``release.available`` event of its loan carrying that value). Each repayment raises the
  value, so each one is announced once; the financing itself announces the margin's worth.
* ``claim.raised``: a claim with an amount on the enterprise (not ``cap_exhausted``) that has no
  ``claim.raised`` event yet.

The sweep locks the active endpoints first (as the loan sweep does), so two sweeps never record
the same event twice; the outbox delivers them signed (``integrations.events.event_deliver``).
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import transaction
from django.db.models import CharField, Exists, F, OuterRef, QuerySet
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from lending.models import ClaimStatus, GoodsHold, GuaranteeClaim
from scf import clock

from ..events import SWEEP_BATCH, events_record
from ..models import OutboundEvent, WebhookEndpoint

RELEASE_AVAILABLE = "release.available"
CLAIM_RAISED = "claim.raised"


def _amount(value: Decimal) -> str:
    return f"{value:.2f}"


def _event(type_: str, enterprise_id: int, payload: dict[str, str]) -> OutboundEvent:
    now = clock.now()
    return OutboundEvent(
        event_id=uuid.uuid4().hex,
        enterprise_id=enterprise_id,
        type=type_,
        payload=payload,
        created_at=now,
        next_attempt_at=now,
    )


def _unannounced_holds(enterprise_ids: list[int]) -> QuerySet[GoodsHold]:
    announced = OutboundEvent.objects.annotate(
        loan_key=KT("payload__loan_id"), value_key=KT("payload__releasable_value")
    ).filter(
        type=RELEASE_AVAILABLE,
        enterprise_id=OuterRef("loan__program__enterprise_id"),
        loan_key=OuterRef("loan_key"),
        value_key=OuterRef("value_key"),
    )
    return (
        GoodsHold.objects.filter(
            loan__program__enterprise_id__in=enterprise_ids,
            releasable_value__gt=F("released_value"),
        )
        .annotate(
            loan_key=Cast("loan_id", CharField()),
            value_key=Cast("releasable_value", CharField()),
        )
        .filter(~Exists(announced))
        .select_related("loan__order", "loan__program", "agent")
    )


def _unannounced_claims(enterprise_ids: list[int]) -> QuerySet[GuaranteeClaim]:
    announced = OutboundEvent.objects.annotate(claim_key=KT("payload__claim_id")).filter(
        type=CLAIM_RAISED, enterprise_id=OuterRef("enterprise_id"), claim_key=OuterRef("claim_key")
    )
    return (
        GuaranteeClaim.objects.filter(enterprise_id__in=enterprise_ids)
        .exclude(status=ClaimStatus.CAP_EXHAUSTED)
        .annotate(claim_key=Cast("pk", CharField()))
        .filter(~Exists(announced))
        .select_related("loan__order", "agent")
    )


def release_payload(hold: GoodsHold) -> dict[str, str]:
    return {
        "loan_id": str(hold.loan_id),
        "reference": hold.loan.reference,
        "order_external_id": hold.loan.order.external_id,
        "agent_code": hold.agent.code,
        "currency": hold.currency,
        "order_value": _amount(hold.order_value),
        "releasable_value": _amount(hold.releasable_value),
        "released_value": _amount(hold.released_value),
        "available_value": _amount(hold.releasable_value - hold.released_value),
    }


def claim_payload(claim: GuaranteeClaim) -> dict[str, str]:
    return {
        "claim_id": str(claim.pk),
        "claim_reference": claim.reference,
        "loan_id": str(claim.loan_id),
        "loan_reference": claim.loan.reference,
        "order_external_id": claim.loan.order.external_id,
        "agent_code": claim.agent.code,
        "guarantee_type": claim.guarantee_type,
        "currency": claim.currency,
        "amount": _amount(claim.amount),
        "raised_on": claim.raised_on.isoformat(),
        "window_ends_on": claim.window_ends_on.isoformat(),
    }


@transaction.atomic
def tripartite_events_sweep(*, limit: int = SWEEP_BATCH) -> int:
    """Record the ``release.available`` and ``claim.raised`` events not recorded yet."""
    enterprise_ids = list(
        WebhookEndpoint.objects.select_for_update()
        .filter(active=True)
        .order_by("pk")
        .values_list("enterprise_id", flat=True)
    )
    if not enterprise_ids:
        return 0
    events = [
        _event(RELEASE_AVAILABLE, hold.loan.program.enterprise_id, release_payload(hold))
        for hold in _unannounced_holds(enterprise_ids).order_by("pk")[:limit]
    ]
    events += [
        _event(CLAIM_RAISED, claim.enterprise_id, claim_payload(claim))
        for claim in _unannounced_claims(enterprise_ids).order_by("pk")[:limit]
    ]
    return len(events_record(events))
