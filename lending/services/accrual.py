"""Daily interest and penalty accrual: the arithmetic, one loan's day, and the accrual sub-ledger.

Design
------
* **Which days accrue.** Close of business (COB) for business date D accrues the night of D, on
  the principal outstanding at the end of D (payments value-dated D count first). A loan
  disbursed on V and repaid in full on R therefore accrues the R - V days V .. R-1. Every
  calendar day accrues (ACT/360, ACT/365F): a business date is a calendar date in the program's
  zone; only *due dates* roll to a business day (the program's calendar, ``scf.clock``), and
  they were rolled when the loan was made.
* **Interest** for day D = outstanding principal x annual_rate / basis (360 or 365) while
  principal is outstanding. **Penalty** for day D = outstanding (overdue) principal x
  penalty_rate / basis on every day D > due_date + grace_days. Interest keeps running after the
  due date; penalty comes on top.
* **Exact, then rounded once.** The interest accrued through night D is exactly
  ``numerator_D / basis``, where the *numerator* is the sum over the nights so far of
  ``base x annual_rate`` (the principal outstanding that night times the rate). A base has two
  places and a rate six, so each night's term and their running sum are exact decimals with
  eight places, and they are kept exactly: ``interest_numerator`` / ``penalty_numerator`` on the
  loan and ``numerator`` (through that night) on each ``Accrual`` row, ``NUMERIC(40, 8)`` (a
  night is below 10^19, a ``NUMERIC(18, 2)`` base times a rate below 1,000, so 32 integer digits
  outlast any loan). The division by the basis (360 or 365) is the only inexact step and it is
  done once, when rounding: ``posted_D = round_half_even(numerator_D / basis)`` to the cent,
  computed on integers (``interest_rounded``), and the amount posted for D is ``posted_D -
  posted_(D-1)``. The posted amounts therefore add up to the exact total rounded half-even: no
  penny drift, and a total that lands exactly on a half cent (10,000.00 at 4.35 % ACT/360 for 93
  nights is 112.375) goes to the even cent. Rounding each night first, to any number of places,
  and summing the rounded nights can put such a total on the wrong side of the tie. The quote's
  interest to maturity (``lending.services.terms.interest_for``) is the same rounding of
  ``principal x rate x nights``, so a loan repaid on its due date owes exactly what was quoted.
  The PostgreSQL COB statement (``lending.services.cob_day``) does the same arithmetic in exact
  ``NUMERIC``, so both backends and this module agree to the last digit (tests compare them).
* **Rows from before exact arithmetic.** Until migration ``0008_exact_interest`` the nights were
  rounded to 12 places before they were summed. The migration recomputed every numerator from
  the rows' own ``base`` and ``annual_rate``; the amounts already posted stay as they were, so a
  loan can carry a prefix whose posted total differs by a cent from the exact rounding. The
  ``accrual_correct`` command replays such loans (``lending.services.accrual_correct``); a loan
  it leaves posts the cent with its next night.
* **Days past due and status.** After D's accrual, ``days_past_due = D - due_date`` while
  anything is owed and D > due_date, else 0; an open loan becomes ``overdue`` then and stays
  overdue until it is repaid. The DPD buckets are ``lending.dpd``'s, computed, not stored.
* **Sub-ledger and general ledger.** Each loan-day-kind is one ``Accrual`` row (one *active* row
  per loan, date and kind, enforced by a partial unique index). The general ledger carries only
  totals: one entry per (program, date, kind) from COB, Dr interest_receivable / Cr
  interest_income (penalty alike), and per-loan entries for catch-up, reversal and replay. Those
  accrual lines name no loan: the per-loan detail is the sub-ledger, and the book check proves
  per loan ``accrued_interest = active accruals - interest repaid`` and in total that the
  accrual entries add up to the active accrual rows. Because ``ledger_post`` insists that receivable lines name a
  loan, accrual entries are written here (``accrual_entry_post``), balanced and keyed the same way.
* ``accrue_day`` is the SQLite (demo) COB path and the reference the PostgreSQL statement is
  tested against; ``lending.services.accrual_loan`` accrues one loan day by day with it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from scf.money import CENT

from ..models import (
    AccountCode,
    Accrual,
    AccrualKind,
    EntryKind,
    JournalEntry,
    JournalLine,
    Loan,
    LoanStatus,
    Program,
)
from .interest import basis_for, interest_rounded, numerator_add

ZERO = Decimal("0.00")
ACCOUNTS = {
    AccrualKind.INTEREST: (AccountCode.INTEREST_RECEIVABLE, AccountCode.INTEREST_INCOME),
    AccrualKind.PENALTY: (AccountCode.PENALTY_RECEIVABLE, AccountCode.PENALTY_INCOME),
}
ENTRY_KINDS = {
    AccrualKind.INTEREST: EntryKind.INTEREST_ACCRUAL,
    AccrualKind.PENALTY: EntryKind.PENALTY_ACCRUAL,
}
# The loan columns the accrual moves (saved with ``update_fields``).
ACCRUAL_FIELDS = [
    "outstanding_principal",
    "accrued_interest",
    "accrued_penalty",
    "interest_numerator",
    "interest_posted_cumulative",
    "penalty_numerator",
    "penalty_posted_cumulative",
    "days_past_due",
    "status",
    "accrued_through",
]


# --- arithmetic ---------------------------------------------------------------------------------


def days(start: dt.date, end: dt.date) -> Iterator[dt.date]:
    """Every date from ``start`` through ``end`` inclusive."""
    day = start
    while day <= end:
        yield day
        day += dt.timedelta(days=1)


# --- one loan's day -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccrualTerms:
    """What a loan's accrual depends on that does not change from day to day."""

    value_date: dt.date
    due_date: dt.date
    grace_days: int
    annual_rate: Decimal
    penalty_rate: Decimal
    basis: int

    @classmethod
    def of(cls, loan: Loan) -> AccrualTerms:
        if loan.value_date is None:
            raise ValueError(f"loan {loan.pk} has no value date: it was never disbursed")
        return cls(
            value_date=loan.value_date,
            due_date=loan.due_date,
            grace_days=loan.grace_days,
            annual_rate=loan.annual_rate,
            penalty_rate=loan.penalty_rate,
            basis=basis_for(loan.day_count),
        )

    def penalty_applies(self, day: dt.date) -> bool:
        return day > self.due_date + dt.timedelta(days=self.grace_days)


@dataclass(frozen=True, slots=True)
class LoanState:
    """A loan's balances and accrual state at the end of a day (a value, changed by replace)."""

    outstanding: Decimal
    interest: Decimal
    penalty: Decimal
    interest_numerator: Decimal
    interest_posted: Decimal
    penalty_numerator: Decimal
    penalty_posted: Decimal
    days_past_due: int
    status: str
    accrued_through: dt.date | None

    @property
    def owed(self) -> Decimal:
        return self.outstanding + self.interest + self.penalty

    @classmethod
    def of(cls, loan: Loan) -> LoanState:
        return cls(
            outstanding=loan.outstanding_principal,
            interest=loan.accrued_interest,
            penalty=loan.accrued_penalty,
            interest_numerator=Decimal(loan.interest_numerator),
            interest_posted=loan.interest_posted_cumulative,
            penalty_numerator=Decimal(loan.penalty_numerator),
            penalty_posted=loan.penalty_posted_cumulative,
            days_past_due=loan.days_past_due,
            status=loan.status,
            accrued_through=loan.accrued_through,
        )

    def apply_to(self, loan: Loan) -> None:
        """Copy onto the loan the columns in ``ACCRUAL_FIELDS``."""
        loan.outstanding_principal = self.outstanding
        loan.accrued_interest = self.interest
        loan.accrued_penalty = self.penalty
        loan.interest_numerator = self.interest_numerator
        loan.interest_posted_cumulative = self.interest_posted
        loan.penalty_numerator = self.penalty_numerator
        loan.penalty_posted_cumulative = self.penalty_posted
        loan.days_past_due = self.days_past_due
        loan.status = self.status
        loan.accrued_through = self.accrued_through


@dataclass(frozen=True, slots=True)
class DayAccrual:
    """One sub-ledger row in the making."""

    kind: AccrualKind
    business_date: dt.date
    base: Decimal
    annual_rate: Decimal
    numerator: Decimal  # cumulative, through this night
    amount: Decimal


def _accrue_kind(
    state: LoanState, kind: AccrualKind, rate: Decimal, basis: int, day: dt.date
) -> tuple[LoanState, DayAccrual]:
    interest = kind == AccrualKind.INTEREST
    before = state.interest_numerator if interest else state.penalty_numerator
    posted_before = state.interest_posted if interest else state.penalty_posted
    numerator = numerator_add(before, state.outstanding, rate)
    posted = interest_rounded(numerator, basis)
    amount = posted - posted_before
    row = DayAccrual(kind, day, state.outstanding, rate, numerator, amount)
    if interest:
        state = replace(
            state,
            interest_numerator=numerator,
            interest_posted=posted,
            interest=state.interest + amount,
        )
    else:
        state = replace(
            state,
            penalty_numerator=numerator,
            penalty_posted=posted,
            penalty=state.penalty + amount,
        )
    return state, row


def accrue_day(
    state: LoanState, terms: AccrualTerms, day: dt.date
) -> tuple[LoanState, list[DayAccrual]]:
    """The night of ``day`` for one loan: its accrual rows and its state afterwards.

    The reference implementation of the COB statement (see the module docstring).
    """
    rows: list[DayAccrual] = []
    if state.outstanding > 0:
        state, row = _accrue_kind(state, AccrualKind.INTEREST, terms.annual_rate, terms.basis, day)
        rows.append(row)
        if terms.penalty_applies(day):
            state, row = _accrue_kind(
                state, AccrualKind.PENALTY, terms.penalty_rate, terms.basis, day
            )
            rows.append(row)
    past_due = day > terms.due_date and state.owed > 0
    return (
        replace(
            state,
            days_past_due=(day - terms.due_date).days if past_due else 0,
            status=LoanStatus.OVERDUE.value if past_due else state.status,
            accrued_through=day,
        ),
        rows,
    )


# --- the general ledger side --------------------------------------------------------------------


def accrual_entry_rows(
    *,
    program: Program,
    kind: AccrualKind,
    idempotency_key: str,
    business_date: dt.date,
    amount: Decimal,
    loan: Loan | None = None,
    reverse: bool = False,
    entry_id: int | None = None,
    description: str = "",
) -> tuple[JournalEntry, list[JournalLine]]:
    """One balanced two-line accrual entry (or its reversal) for ``amount`` > 0, unsaved.

    Dr receivable / Cr income, or the mirror with ``reverse``. The lines name no loan (see the
    module docstring); the entry may (catch-up, reversal and replay belong to one loan).
    ``entry_id`` lets COB use an id it reserved before inserting the rows that point at it. The
    idempotency key is unique: posting a key twice is a bug and fails the transaction.
    """
    if amount <= 0 or amount != amount.quantize(CENT):
        raise ValueError(f"accrual entry amount must be positive cents, not {amount}")
    receivable, income = ACCOUNTS[kind]
    entry = JournalEntry(
        id=entry_id,
        kind=EntryKind.REVERSAL if reverse else ENTRY_KINDS[kind],
        idempotency_key=idempotency_key,
        business_date=business_date,
        currency=program.currency,
        loan=loan,
        program=program,
        description=description[:200],
    )
    debit, credit = (income, receivable) if reverse else (receivable, income)
    return entry, [
        JournalLine(entry=entry, account=debit, currency=program.currency, debit=amount),
        JournalLine(entry=entry, account=credit, currency=program.currency, credit=amount),
    ]


def accrual_entry_post(**entry: Any) -> JournalEntry:
    """Post ``accrual_entry_rows(**entry)``."""
    row, lines = accrual_entry_rows(**entry)
    row.save(force_insert=True)
    JournalLine.objects.bulk_create(lines)
    return row


def totals_by_kind(rows: Iterable[DayAccrual]) -> dict[AccrualKind, Decimal]:
    totals: dict[AccrualKind, Decimal] = defaultdict(lambda: ZERO)
    for row in rows:
        totals[row.kind] += row.amount
    return dict(totals)


def accrual_row(loan_id: int, row: DayAccrual, entry: JournalEntry | None) -> Accrual:
    """A sub-ledger row of ``loan_id``, unsaved, linked to its kind's entry (if posted)."""
    return Accrual(
        loan_id=loan_id,
        business_date=row.business_date,
        kind=row.kind,
        base=row.base,
        annual_rate=row.annual_rate,
        numerator=row.numerator,
        amount=row.amount,
        journal_entry=entry,
    )


def accrual_rows_save(
    *, rows: Iterable[tuple[int, DayAccrual]], entries: dict[AccrualKind, JournalEntry]
) -> list[Accrual]:
    """Write sub-ledger rows ``(loan id, row)``, each linked to its kind's entry (if posted)."""
    return Accrual.objects.bulk_create(
        (accrual_row(loan_id, row, entries.get(row.kind)) for loan_id, row in rows),
        batch_size=1000,
    )
