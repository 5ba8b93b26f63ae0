"""The audit trail: one append-only row per decision, review action, line change, money movement.

Written in the same transaction as the change it records.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from scf.hotpath import build

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
    audit = audit_build(actor=actor, action=action, obj=obj, before=before, after=after, note=note)
    audit.save(force_insert=True)
    return audit


def audit_build(
    *,
    actor: Any,
    action: str,
    obj: models.Model,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    note: str = "",
) -> AuditLog:
    """The audit row of a change, unsaved (``audit_record`` saves it; the finance click writes
    it with its other rows)."""
    return build(
        AuditLog,
        actor=actor if getattr(actor, "pk", None) is not None else None,
        actor_label=actor_label(actor),
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        before=before or {},
        after=after or {},
        note=note,
    )
