"""The audit trail: one append-only row per decision, review action, line change, money movement.

Written in the same transaction as the change it records.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from ..models import AuditLog

SYSTEM = "system"


def actor_label(actor: Any) -> str:
    if actor is None:
        return SYSTEM
    if getattr(actor, "pk", None) is None:
        return str(actor)[:100]
    return f"{getattr(actor, 'role', 'user')}:{actor.get_username()}"[:100]


def audit_record(
    *,
    actor: Any,
    action: str,
    obj: models.Model,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    note: str = "",
) -> AuditLog:
    return AuditLog.objects.create(
        actor=actor if getattr(actor, "pk", None) is not None else None,
        actor_label=actor_label(actor),
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        before=before or {},
        after=after or {},
        note=note,
    )
