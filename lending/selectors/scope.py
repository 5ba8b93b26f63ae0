"""Bank staff see only their own bank: the one helper every read of bank staff goes through.

Risk reviewers, risk approvers and operations admins belong to one bank (``BankMembership``).
Every queryset a page or an API shows them is narrowed with ``scope_for(user, queryset,
path_to_bank)``, where the path leads from the queryset's rows to their bank (``"bank"`` for a
program, ``"program__bank"`` for a loan or a line, ``"loan__program__bank"`` for a case). A row
of another bank is then simply missing: a list leaves it out and an id is a 404, exactly as for
an id that does not exist.

- A staff user without a bank sees nothing (empty lists, 404 on every id): being told which bank
  someone works for is a deliberate act, never a default.
- A platform superuser (``is_superuser``) sees every bank: the Django admin already shows them
  every row, so scoping their pages would hide nothing and only confuse.
- Agents and enterprise admins are scoped by their party (their own lines, their enterprise's
  programs) where the queryset is built; ``scope_for`` leaves their querysets as they are.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db.models import Model, QuerySet

M = TypeVar("M", bound=Model)


def is_bank_staff(user: Any) -> bool:
    return bool(getattr(user, "is_bank_staff", False))


def sees_every_bank(user: Any) -> bool:
    """A platform superuser: not narrowed to a bank."""
    return bool(getattr(user, "is_superuser", False))


def _multi_valued(model: type[Model], path: str) -> bool:
    """Whether following ``path`` from ``model`` can reach more than one row (a reverse
    foreign key or many-to-many on the way), so a plain join would repeat rows."""
    for name in path.split("__"):
        field = model._meta.get_field(name)
        if field.one_to_many or field.many_to_many:
            return True
        model = field.related_model  # type: ignore[assignment]
    return False


def scope_for(user: Any, queryset: QuerySet[M], path_to_bank: str) -> QuerySet[M]:
    """``queryset`` narrowed to the rows of the bank staff user's bank (see the module's rules);
    unchanged for a superuser and for anyone who is not bank staff."""
    if not is_bank_staff(user) or sees_every_bank(user):
        return queryset
    # Joined to the user's membership rather than read first: no query of its own, and a user
    # without a bank matches no row.
    lookup = {f"{path_to_bank}__staff__user_id": user.pk}
    if _multi_valued(queryset.model, path_to_bank):
        rows = queryset.model._base_manager.filter(**lookup).values("pk")
        return queryset.filter(pk__in=rows)
    return queryset.filter(**lookup)
