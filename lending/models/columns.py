"""Column types and constraints the lending models share: money, rates, accrual numerators."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Round
from django.db.models.lookups import GreaterThanOrEqual

from scf.money import MONEY_DIGITS, MONEY_PLACES


def money(**kwargs: Any) -> models.DecimalField:  # type: ignore[type-arg]
    return models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES, **kwargs)


def rate(**kwargs: Any) -> models.DecimalField:  # type: ignore[type-arg]
    return models.DecimalField(max_digits=9, decimal_places=6, **kwargs)


def numerator_column(**kwargs: Any) -> models.DecimalField:  # type: ignore[type-arg]
    """An exact accrual numerator: a sum over nights of base x rate (2 + 6 places), the interest
    times the day-count basis (``lending.services.interest``). A night is below 10^19 (a
    ``money`` base times a ``rate``), so 32 integer digits outlast any loan."""
    return models.DecimalField(max_digits=40, decimal_places=8, **kwargs)


def in_cents(expression: Any) -> Round:
    """A sum or difference of money columns, rounded to the cent, for CHECK constraints.

    Exact on PostgreSQL's NUMERIC (the value already has two places); on SQLite (the demo) money
    columns are doubles, so ``0.10 + 0.20`` is not ``0.30`` until it is rounded.
    """
    return Round(expression, precision=MONEY_PLACES)


def headroom_constraints(prefix: str) -> list[models.BaseConstraint]:
    return [
        models.CheckConstraint(name=f"{prefix}_limit_nonneg", condition=Q(limit__gte=0)),
        models.CheckConstraint(name=f"{prefix}_reserved_nonneg", condition=Q(reserved__gte=0)),
        models.CheckConstraint(
            name=f"{prefix}_outstanding_nonneg", condition=Q(outstanding_principal__gte=0)
        ),
        models.CheckConstraint(
            name=f"{prefix}_within_limit",
            condition=GreaterThanOrEqual(
                in_cents(F("limit") - F("outstanding_principal") - F("reserved")), 0
            ),
        ),
    ]
