"""Exact interest: the accrual keeps the exact numerator (sum of base x rate), not a 12-place sum.

Until now each night's interest was rounded to 12 places and the rounded nights were summed
(``raw_cumulative`` on accrual rows, ``interest_raw_cumulative`` / ``penalty_raw_cumulative`` on
loans). Now the sum of ``base x annual_rate`` over the nights is kept exactly (eight places) and
divided by the day-count basis only when rounding to the cent (``lending.services.interest``).

Every accrual row stores its night's ``base`` and ``annual_rate``, so the numerators are
recomputed exactly from the rows:

* an active row's numerator is the sum of ``base x annual_rate`` over the loan's active rows of
  its kind up to its date; a loan's numerators are the sums over all its active rows (on
  PostgreSQL one windowed ``UPDATE`` each);
* a reversed row belonged to the loan's history as it stood when the row was reversed: at each
  earlier date, the row that was active then is the one reversed first at or after that moment
  (or never). Its numerator is summed over that history (in Python, for the few loans that have
  reversed rows).

Amounts already posted are not touched: a loan can carry nights whose posted total is a cent off
the exact rounding. ``manage.py accrual_correct`` replays those loans (see its help).

Backwards, the 12-place sums are recomputed the same way from the rows, with the old rule for a
night (``base x rate / basis`` rounded half-even at 12 places), so the migration reverses to the
very values the old code wrote.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from decimal import Decimal, localcontext
from typing import Any

from django.db import migrations, models

BASIS = {"ACT/360": 360, "ACT/365F": 365}
ACTIVE = (1, dt.datetime.min.replace(tzinfo=dt.UTC))  # sorts after every reversal time
Night = Callable[[Decimal, Decimal, int], Decimal]


def exact_night(base: Decimal, rate: Decimal, basis: int) -> Decimal:
    return base * rate


def old_night(base: Decimal, rate: Decimal, basis: int) -> Decimal:
    """The rule before this migration: base x rate / basis, half-even at 12 places."""
    quotient, remainder = divmod(int((base * rate).scaleb(12)), basis)
    if 2 * remainder > basis or (2 * remainder == basis and quotient % 2 == 1):
        quotient += 1
    return Decimal(quotient).scaleb(-12)


def _alive_key(reversed_at: dt.datetime | None) -> tuple[int, dt.datetime]:
    return ACTIVE if reversed_at is None else (0, reversed_at)


def chain_values(rows: list[Any], basis: int, night: Night) -> dict[int, Decimal]:
    """Each row's cumulative (by ``night``) over the history it belonged to (one loan, one kind).

    The history alive at moment T holds, at each date, the row with the smallest reversal time
    at or after T (an active row's is infinite): the row that was active at T.
    """
    by_date: dict[dt.date, list[Any]] = defaultdict(list)
    for row in rows:
        by_date[row.business_date].append(row)
    dates = sorted(by_date)
    values: dict[int, Decimal] = {}
    for moment in {_alive_key(row.reversed_at) for row in rows}:
        total = Decimal(0)
        for date in dates:
            alive = [r for r in by_date[date] if _alive_key(r.reversed_at) >= moment]
            if not alive:
                continue
            current = min(alive, key=lambda r: _alive_key(r.reversed_at))
            total += night(current.base, current.annual_rate, basis)
            for row in by_date[date]:
                if _alive_key(row.reversed_at) == moment:
                    values[row.pk] = total
    return values


def _recompute_loans(
    apps: Any, loan_ids: Iterable[int], night: Night, column: str, loan_columns: tuple[str, str]
) -> None:
    Loan = apps.get_model("lending", "Loan")
    Accrual = apps.get_model("lending", "Accrual")
    for loan in Loan.objects.filter(pk__in=list(loan_ids)).only("pk", "day_count").iterator():
        basis = BASIS[loan.day_count]
        changed, totals = [], {"interest": Decimal(0), "penalty": Decimal(0)}
        for kind in totals:
            rows = list(
                Accrual.objects.filter(loan_id=loan.pk, kind=kind)
                .only("pk", "business_date", "reversed_at", "base", "annual_rate")
                .order_by("business_date", "pk")
            )
            values = chain_values(rows, basis, night)
            for row in rows:
                setattr(row, column, values[row.pk])
                changed.append(row)
                if row.reversed_at is None:  # the last active row's is the loan's
                    totals[kind] = values[row.pk]
        Accrual.objects.bulk_update(changed, [column], batch_size=1000)
        interest, penalty = loan_columns
        Loan.objects.filter(pk=loan.pk).update(
            **{interest: totals["interest"], penalty: totals["penalty"]}
        )


_ACTIVE_ROWS_SQL = """
UPDATE lending_accrual a SET numerator = w.numerator
FROM (
    SELECT id, sum(base * annual_rate) OVER (
        PARTITION BY loan_id, kind ORDER BY business_date) AS numerator
    FROM lending_accrual
    WHERE reversed_at IS NULL
) w
WHERE a.id = w.id
"""

_LOANS_SQL = """
UPDATE lending_loan l SET
    interest_numerator = s.interest, penalty_numerator = s.penalty
FROM (
    SELECT loan_id,
           coalesce(sum(base * annual_rate) FILTER (WHERE kind = 'interest'), 0) AS interest,
           coalesce(sum(base * annual_rate) FILTER (WHERE kind = 'penalty'), 0) AS penalty
    FROM lending_accrual
    WHERE reversed_at IS NULL
    GROUP BY loan_id
) s
WHERE l.id = s.loan_id
"""


def forwards(apps: Any, schema_editor: Any) -> None:
    Accrual = apps.get_model("lending", "Accrual")
    columns = ("interest_numerator", "penalty_numerator")
    with localcontext() as context:
        context.prec = 60
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(_ACTIVE_ROWS_SQL)
            schema_editor.execute(_LOANS_SQL)
            with_history = Accrual.objects.filter(reversed_at__isnull=False)
            loan_ids = set(with_history.values_list("loan_id", flat=True).distinct())
        else:  # SQLite sums NUMERIC as floating point: the demo's few rows go through Python
            loan_ids = set(Accrual.objects.values_list("loan_id", flat=True).distinct())
        _recompute_loans(apps, sorted(loan_ids), exact_night, "numerator", columns)


def backwards(apps: Any, schema_editor: Any) -> None:
    Accrual = apps.get_model("lending", "Accrual")
    loan_ids = set(Accrual.objects.values_list("loan_id", flat=True).distinct())
    columns = ("interest_raw_cumulative", "penalty_raw_cumulative")
    with localcontext() as context:
        context.prec = 60
        _recompute_loans(apps, sorted(loan_ids), old_night, "raw_cumulative", columns)


def checks_now(apps: Any, schema_editor: Any) -> None:
    """Fire the deferred foreign-key checks the row updates queued: PostgreSQL refuses to
    ALTER a table with pending trigger events in the same transaction."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):
    dependencies = [
        ("lending", "0007_hot_path_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="accrual",
            name="numerator",
            field=models.DecimalField(decimal_places=8, default=Decimal(0), max_digits=40),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="loan",
            name="interest_numerator",
            field=models.DecimalField(decimal_places=8, default=Decimal("0"), max_digits=40),
        ),
        migrations.AddField(
            model_name="loan",
            name="penalty_numerator",
            field=models.DecimalField(decimal_places=8, default=Decimal("0"), max_digits=40),
        ),
        # A default for the old column, so that the migration can be reversed on a full table.
        migrations.AlterField(
            model_name="accrual",
            name="raw_cumulative",
            field=models.DecimalField(decimal_places=12, default=Decimal(0), max_digits=30),
        ),
        migrations.RunPython(migrations.RunPython.noop, checks_now),
        migrations.RunPython(forwards, backwards),
        migrations.RunPython(checks_now, migrations.RunPython.noop),
        migrations.RemoveField(model_name="accrual", name="raw_cumulative"),
        migrations.RemoveField(model_name="loan", name="interest_raw_cumulative"),
        migrations.RemoveField(model_name="loan", name="penalty_raw_cumulative"),
    ]
