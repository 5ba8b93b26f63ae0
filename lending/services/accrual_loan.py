"""One loan accrued day by day in Python, with its own ledger entries.

``loan_accrue_through`` serves a loan that fell behind the COB (disbursed with a past value date)
and a repayment whose value date is ahead of the loan's last accrual; the nights are
``lending.services.accrual.accrue_day``'s, as in COB.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from ..models import Accrual, AccrualKind, JournalEntry, JournalLine, Loan
from .accrual import (
    ACCRUAL_FIELDS,
    AccrualTerms,
    DayAccrual,
    LoanState,
    accrual_entry_post,
    accrual_entry_rows,
    accrual_row,
    accrual_rows_save,
    accrue_day,
    days,
    totals_by_kind,
)


def accrue_days(
    state: LoanState, terms: AccrualTerms, start: dt.date, end: dt.date
) -> tuple[LoanState, list[DayAccrual]]:
    rows: list[DayAccrual] = []
    for day in days(start, end):
        state, day_rows = accrue_day(state, terms, day)
        rows.extend(day_rows)
    return state, rows


def loan_accrual_post(
    *,
    loan: Loan,
    rows: list[DayAccrual],
    key: str,
    business_date: dt.date,
    description: str,
) -> dict[AccrualKind, JournalEntry]:
    """Post one entry per kind for a loan's accrual rows, and save the rows linked to them."""
    entries = {
        kind: accrual_entry_post(
            program=loan.program,
            kind=kind,
            idempotency_key=f"{key}:{kind}",
            business_date=business_date,
            amount=total,
            loan=loan,
            description=description,
        )
        for kind, total in totals_by_kind(rows).items()
        if total > 0
    }
    accrual_rows_save(rows=[(loan.pk, row) for row in rows], entries=entries)
    return entries


@dataclass(frozen=True, slots=True)
class CatchUp:
    """A loan's nights from the day after its last accrual through ``through``, computed, not
    yet written: the rows, the state after them, and the entries' key and description."""

    loan: Loan
    through: dt.date
    state: LoanState
    rows: list[DayAccrual]
    key: str
    description: str


def loan_catch_up(*, loan: Loan, through: dt.date, key: str) -> CatchUp | None:
    """The nights ``loan_accrue_through`` would accrue; None when the loan is already there."""
    terms = AccrualTerms.of(loan)
    state = LoanState.of(loan)
    start = terms.value_date if state.accrued_through is None else state.accrued_through
    if state.accrued_through is not None:
        start += dt.timedelta(days=1)
    if start > through:
        return None
    state, rows = accrue_days(state, terms, start, through)
    description = f"accrual {start} to {through}, loan {loan.reference}"
    return CatchUp(loan, through, state, rows, key, description)


def loan_accrue_through(*, loan: Loan, through: dt.date, key: str) -> list[DayAccrual]:
    """Accrue one locked, open loan day by day up to and including ``through``.

    Starts the day after ``accrued_through`` (or on the value date); does nothing when the loan
    is already there. Posts one entry per kind keyed ``<key>:<kind>`` and saves the loan's
    accrual columns. The caller holds the loan's row lock.
    """
    caught = loan_catch_up(loan=loan, through=through, key=key)
    if caught is None:
        return []
    loan_accrual_post(
        loan=loan,
        rows=caught.rows,
        key=key,
        business_date=through,
        description=caught.description,
    )
    caught.state.apply_to(loan)
    loan.save(update_fields=ACCRUAL_FIELDS)
    return caught.rows


def catch_ups_post(caught: Sequence[CatchUp]) -> None:
    """Write many loans' catch-ups in a few statements: the entries and rows
    ``loan_accrual_post`` would write for each, keyed and described alike. The loans' columns are
    the caller's to save (``caught.state``)."""
    entries: dict[tuple[int, AccrualKind], JournalEntry] = {}
    lines: list[JournalLine] = []
    for item in caught:
        for kind, total in totals_by_kind(item.rows).items():
            if total > 0:
                entry, entry_lines = accrual_entry_rows(
                    program=item.loan.program,
                    kind=kind,
                    idempotency_key=f"{item.key}:{kind}",
                    business_date=item.through,
                    amount=total,
                    loan=item.loan,
                    description=item.description,
                )
                entries[(item.loan.pk, kind)] = entry
                lines.extend(entry_lines)
    JournalEntry.objects.bulk_create(list(entries.values()), batch_size=2000)
    for line in lines:
        line.entry_id = line.entry.pk
    JournalLine.objects.bulk_create(lines, batch_size=2000)
    Accrual.objects.bulk_create(
        (
            accrual_row(item.loan.pk, row, entries.get((item.loan.pk, row.kind)))
            for item in caught
            for row in item.rows
        ),
        batch_size=2000,
    )
