"""One loan accrued day by day in Python, with its own ledger entries.

``loan_accrue_through`` serves a loan that fell behind the COB (disbursed with a past value date)
and a repayment whose value date is ahead of the loan's last accrual; the nights are
``lending.services.accrual.accrue_day``'s, as in COB.
"""

from __future__ import annotations

import datetime as dt

from ..models import AccrualKind, JournalEntry, Loan
from .accrual import (
    ACCRUAL_FIELDS,
    AccrualTerms,
    DayAccrual,
    LoanState,
    accrual_entry_post,
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


def loan_accrue_through(*, loan: Loan, through: dt.date, key: str) -> list[DayAccrual]:
    """Accrue one locked, open loan day by day up to and including ``through``.

    Starts the day after ``accrued_through`` (or on the value date); does nothing when the loan
    is already there. Posts one entry per kind keyed ``<key>:<kind>`` and saves the loan's
    accrual columns. The caller holds the loan's row lock.
    """
    terms = AccrualTerms.of(loan)
    state = LoanState.of(loan)
    start = terms.value_date if state.accrued_through is None else state.accrued_through
    if state.accrued_through is not None:
        start += dt.timedelta(days=1)
    if start > through:
        return []
    state, rows = accrue_days(state, terms, start, through)
    loan_accrual_post(
        loan=loan,
        rows=rows,
        key=key,
        business_date=through,
        description=f"accrual {start} to {through}, loan {loan.reference}",
    )
    state.apply_to(loan)
    loan.save(update_fields=ACCRUAL_FIELDS)
    return rows
