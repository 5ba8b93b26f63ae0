"""Reads for the audit trail page and its CSV: the filtered rows, and names for the ids they hold;
and the history of one object (a loan's page, a credit line's history).

An audit row names its object by type and id (``lending.review`` / ``12``) and its changes hold
user ids (``claimed_by``). ``audit_entries`` puts names on a batch of rows with one query per
object type present and one for the users, so a page costs the same whatever its size.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db.models import CharField, Model, Q, QuerySet
from django.db.models.functions import Cast
from django.utils import timezone

from orders.models import User

from ..models import (
    AuditLog,
    CobRun,
    CreditLine,
    CreditModel,
    LineProposal,
    Loan,
    Program,
    Repayment,
    Review,
)
from .scope import is_bank_staff, scope_for, sees_every_bank

# Keys of an audit row's before/after that hold a user's id.
USER_KEYS = frozenset({"claimed_by", "first_approver", "second_approver", "decided_by"})
FILTER_MAX = 100
CSV_BATCH = 500


@dataclass(frozen=True)
class AuditFilters:
    action: str = ""  # an action, or the start of one ("review.")
    object_type: str = ""
    object_id: str = ""
    actor: str = ""  # part of the actor's name or sign-in label
    date_from: dt.date | None = None  # dates in the platform's time zone (TIME_ZONE)
    date_to: dt.date | None = None


def _day_start(day: dt.date) -> dt.datetime:
    zone = timezone.get_default_timezone()
    return dt.datetime.combine(day, dt.time.min, tzinfo=zone)


# Each audited type of a bank's object, with the path from it to its bank. A bank's staff see the
# rows of their bank's objects and of the platform's own (``PLATFORM_TYPES``, the credit models
# every bank's lines are scored with); a row of a type in neither list is shown to superusers
# only, so a new audited type stays hidden until it is placed here.
BANK_PATHS: dict[str, tuple[type[Model], str]] = {
    "lending.loan": (Loan, "program__bank"),
    "lending.review": (Review, "loan__program__bank"),
    "lending.creditline": (CreditLine, "program__bank"),
    "lending.program": (Program, "bank"),
    "lending.repayment": (Repayment, "loan__program__bank"),
    "lending.cobrun": (CobRun, "program__bank"),
    "lending.lineproposal": (LineProposal, "program__bank"),
}
PLATFORM_TYPES = frozenset({"lending.creditmodel"})


def audit_bank_path_register(object_type: str, model: type[Model], path_to_bank: str) -> None:
    """Place another app's audited type of a bank's object (``integrations.unappliedcredit``)
    in ``BANK_PATHS``: lending does not import the apps above it, so each registers its own
    (in its ``AppConfig.ready``)."""
    BANK_PATHS[object_type] = (model, path_to_bank)


def audit_scope(user: User, rows: QuerySet[AuditLog]) -> QuerySet[AuditLog]:
    """The rows of ``rows`` a bank's staff may read (``scope.scope_for`` for each object type)."""
    if not is_bank_staff(user) or sees_every_bank(user):
        return rows
    visible = Q(object_type__in=PLATFORM_TYPES)
    for object_type, (model, path) in BANK_PATHS.items():
        ids = (
            scope_for(user, model._base_manager.all(), path)
            .annotate(pk_text=Cast("pk", CharField()))
            .values("pk_text")
        )
        visible |= Q(object_type=object_type, object_id__in=ids)
    return rows.filter(visible)


def audit_trail(*, user: User, filters: AuditFilters) -> QuerySet[AuditLog]:
    """The audit rows matching ``filters`` that ``user`` may read, newest first, with their
    actors."""
    rows = audit_scope(user, AuditLog.objects.select_related("actor")).order_by(
        "-created_at", "-id"
    )
    if filters.action:
        rows = rows.filter(action__startswith=filters.action[:FILTER_MAX])
    if filters.object_type:
        rows = rows.filter(object_type=filters.object_type[:FILTER_MAX])
    if filters.object_id:
        rows = rows.filter(object_id=filters.object_id[:FILTER_MAX])
    if filters.actor:
        text = filters.actor[:FILTER_MAX]
        rows = rows.filter(
            Q(actor_label__icontains=text)
            | Q(actor__first_name__icontains=text)
            | Q(actor__last_name__icontains=text)
        )
    if filters.date_from is not None:
        rows = rows.filter(created_at__gte=_day_start(filters.date_from))
    if filters.date_to is not None:
        rows = rows.filter(created_at__lt=_day_start(filters.date_to + dt.timedelta(days=1)))
    return rows


def object_audit(*, obj: Model) -> QuerySet[AuditLog]:
    """The audit rows of one object (as ``audit_record`` names it), oldest first."""
    return AuditLog.objects.filter(
        object_type=obj._meta.label_lower, object_id=str(obj.pk)
    ).order_by("created_at", "id")


@dataclass(frozen=True)
class Target:
    """The page that shows an audited object: a URL name and its argument."""

    url_name: str
    arg: int
    staff_only: bool = False  # the back office (admin) page


@dataclass(frozen=True)
class _Namer:
    model: type[Model]
    related: tuple[str, ...]
    name: Callable[[Any], str]
    target: Callable[[Any], Target | None] = field(default=lambda obj: None)


NAMERS: dict[str, _Namer] = {
    "lending.loan": _Namer(
        Loan,
        ("agent",),
        lambda o: f"{o.reference} · {o.agent.code}",
        lambda o: Target("web:loan", o.pk),
    ),
    "lending.review": _Namer(
        Review,
        ("loan",),
        lambda o: f"#{o.pk} · {o.loan.reference}",
        lambda o: Target("web:review-case", o.pk),
    ),
    "lending.creditline": _Namer(
        CreditLine,
        ("agent", "program"),
        lambda o: f"{o.agent.code} {o.agent.name} · {o.program.code}",
        lambda o: Target("admin:lending_creditline_change", o.pk, staff_only=True),
    ),
    "lending.program": _Namer(
        Program,
        (),
        lambda o: f"{o.code} {o.name}",
        lambda o: Target("web:program-dashboard", o.pk),
    ),
    "lending.repayment": _Namer(
        Repayment,
        ("loan",),
        lambda o: f"{o.reference} · {o.loan.reference}",
        lambda o: Target("web:loan", o.loan_id),
    ),
    "lending.cobrun": _Namer(
        CobRun,
        ("program",),
        lambda o: f"{o.program.code} · {o.business_date.isoformat()}",
        lambda o: Target("web:program-dashboard", o.program_id),
    ),
    "lending.creditmodel": _Namer(CreditModel, (), lambda o: f"v{o.version}"),
    "lending.lineproposal": _Namer(
        LineProposal,
        ("agent", "program"),
        lambda o: f"#{o.pk} · {o.agent.code} · {o.program.code}",
    ),
}


@dataclass(frozen=True)
class AuditEntry:
    """An audit row with names for its actor, its object and the users in its changes."""

    row: AuditLog
    actor_name: str  # empty for the system
    actor_role: str
    type_name: str  # the object's model, in the active language
    object_name: str
    target: Target | None
    changes: list[tuple[str, Any]]


def _object_names(rows: list[AuditLog]) -> dict[tuple[str, str], Any]:
    """The objects of ``rows`` by (type, id): one query per type present."""
    ids: dict[str, set[int]] = defaultdict(set)
    for row in rows:
        if row.object_type in NAMERS and row.object_id.isdigit():
            ids[row.object_type].add(int(row.object_id))
    found: dict[tuple[str, str], Any] = {}
    for object_type, pks in ids.items():
        namer = NAMERS[object_type]
        for obj in namer.model._default_manager.select_related(*namer.related).filter(pk__in=pks):
            found[(object_type, str(obj.pk))] = obj
    return found


def _user_names(rows: list[AuditLog]) -> dict[int, str]:
    """Names of the users the rows' changes refer to by id (one query, none if there are none)."""
    ids = {
        value
        for row in rows
        for key, value in (row.after or {}).items()
        if key in USER_KEYS and isinstance(value, int)
    }
    if not ids:
        return {}
    return {user.pk: person_name(user) for user in User.objects.filter(pk__in=ids)}


def person_name(user: User) -> str:
    return user.get_full_name() or user.get_username()


def object_type_name(object_type: str) -> str:
    """An audited object's type (``lending.review``) by its model's name in the active language."""
    try:
        return str(apps.get_model(object_type)._meta.verbose_name)
    except (LookupError, ValueError):
        return object_type


def audit_entries(rows: Iterable[AuditLog]) -> list[AuditEntry]:
    """Names for a batch of rows (from ``audit_trail``): a query per object type, one for users."""
    batch = list(rows)
    objects, users = _object_names(batch), _user_names(batch)
    entries = []
    for row in batch:
        obj = objects.get((row.object_type, row.object_id))
        namer = NAMERS.get(row.object_type)
        changes = [
            (key, users.get(value, value) if key in USER_KEYS else value)
            for key, value in (row.after or {}).items()
        ]
        entries.append(
            AuditEntry(
                row=row,
                actor_name=person_name(row.actor) if row.actor is not None else "",
                actor_role=row.actor.role if row.actor is not None else "",
                type_name=object_type_name(row.object_type),
                object_name=namer.name(obj) if obj is not None and namer else f"#{row.object_id}",
                target=namer.target(obj) if obj is not None and namer else None,
                changes=changes,
            )
        )
    return entries


def audit_entries_all(rows: QuerySet[AuditLog], batch: int = CSV_BATCH) -> Iterator[AuditEntry]:
    """Every row of ``rows`` with its names, read and named ``batch`` rows at a time (CSV)."""
    pending: list[AuditLog] = []
    for row in rows.iterator(chunk_size=batch):
        pending.append(row)
        if len(pending) == batch:
            yield from audit_entries(pending)
            pending = []
    if pending:
        yield from audit_entries(pending)
