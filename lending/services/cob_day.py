"""Closing one day for one program's open loans: the accrual rows, the loans, the entries.

* **PostgreSQL: one set-based statement** (``day_sql``). A materialised CTE computes every open
  loan's day (interest and penalty) in stages, with the exact arithmetic of
  ``lending.services.interest`` (``numerator_add``, ``interest_rounded``) in exact ``NUMERIC``;
  from the same rows one ``INSERT ... SELECT`` writes the ``Accrual`` rows (both kinds)
  and one ``UPDATE ... FROM`` moves the loans' numerators, posted totals, balances, days past due
  and status. It returns only counts and totals. The general ledger gets one entry per
  (program, date, kind), Dr receivable / Cr income for the day's total; the rows point at it.
  Its id is reserved from the sequence before the statement (foreign keys are checked at
  commit), so each row is written once, already linked. Loans are taken in id order, so the sub-ledger's loan-keyed indexes fill leaf by leaf.
* **SQLite (the demo): a Python loop over the loans**, calling the same ``accrue_day`` that the
  PostgreSQL tests compare the statement against, to the digit.

The caller (``lending.services.cob.cob_run``) holds the run's claim and the program's lock.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Q

from ..locks import loans_locked
from ..models import OPEN, Accrual, AccrualKind, JournalEntry, Loan, LoanStatus, Program
from .accrual import (
    ACCRUAL_FIELDS,
    AccrualTerms,
    DayAccrual,
    LoanState,
    accrual_entry_post,
    accrual_rows_save,
    accrue_day,
    totals_by_kind,
)

COB_WORK_MEM = "256MB"


def cob_day_accrue(
    *, program: Program, business_date: dt.date
) -> tuple[int, dict[AccrualKind, Decimal]]:
    """Accrue the day for every open loan not yet accrued through it: (loans, totals by kind)."""
    if connection.vendor == "postgresql":
        return _accrue_day_sql(program, business_date)
    return _accrue_day_python(program, business_date)


def _entry_key(program: Program, business_date: dt.date, kind: AccrualKind) -> str:
    return f"cob:{program.pk}:{business_date}:{kind}"


def _post_day(
    program: Program,
    business_date: dt.date,
    kind: AccrualKind,
    total: Decimal,
    entry_id: int | None,
) -> JournalEntry:
    return accrual_entry_post(
        program=program,
        kind=kind,
        idempotency_key=_entry_key(program, business_date, kind),
        business_date=business_date,
        amount=total,
        entry_id=entry_id,
        description=f"COB {business_date}: {kind} accrued, program {program.code}",
    )


# --- the day on SQLite: one loan at a time (demo path) --------------------------------------------


def _open_for_day(program: Program, business_date: dt.date) -> Any:
    return (
        Loan.objects.filter(program=program, status__in=OPEN, value_date__lte=business_date)
        .filter(Q(accrued_through__isnull=True) | Q(accrued_through__lt=business_date))
        .order_by("pk")
    )


def _accrue_day_python(
    program: Program, business_date: dt.date
) -> tuple[int, dict[AccrualKind, Decimal]]:
    """SQLite / demo path: a Python loop over the loans. PostgreSQL uses ``_accrue_day_sql``."""
    loans = list(loans_locked(_open_for_day(program, business_date)))
    rows: list[tuple[int, DayAccrual]] = []
    for loan in loans:
        state, day_rows = accrue_day(LoanState.of(loan), AccrualTerms.of(loan), business_date)
        state.apply_to(loan)
        rows.extend((loan.pk, row) for row in day_rows)
    totals = totals_by_kind(row for _, row in rows)
    entries = {
        kind: _post_day(program, business_date, kind, total, entry_id=None)
        for kind, total in totals.items()
        if total > 0
    }
    accrual_rows_save(rows=rows, entries=entries)
    Loan.objects.bulk_update(loans, ACCRUAL_FIELDS, batch_size=500)
    return len(loans), totals


# --- the day on PostgreSQL: one set-based statement ---------------------------------------------

# The day is computed in stages (derived tables fenced with OFFSET 0), so that PostgreSQL
# evaluates each value once; flattened, the nested expressions would be re-evaluated wherever
# they are used, several times per loan. The arithmetic is ``lending.services.interest``'s, in
# exact NUMERIC (no step rounds):
# - the numerator: before + base x rate (2 + 6 places, exact at 8), as ``numerator_add``;
# - posted cents: with x = numerator x 100 and q = div(x, basis) (the truncated integer quotient,
#   exact), the sign of 2 (x - q basis) - basis says whether the remainder is above, at or below
#   half the basis: q + 1 above, q + (q mod 2) on an exact tie, q below: half-even, as
#   ``interest_rounded``. One division per loan and kind (the simple CASE evaluates the sign once,
#   and the tie's mod only on a tie). round(x / basis) would not do: the division rounds its
#   quotient to a few places first, and a value just off a half cent can come out as the tie.
_NUMERATOR = """
    CASE WHEN s1.{flag} THEN s1.{p}_num_before + s1.base * s1.{rate}
         ELSE s1.{p}_num_before END AS {p}_num"""

_QUOTIENT = """
    CASE WHEN s2.{flag} THEN div(s2.{p}_num * 100, s2.basis) END AS {p}_q"""

_POSTED = """
    CASE WHEN s3.{flag}
         THEN (s3.{p}_q + CASE sign(2 * (s3.{p}_num * 100 - s3.{p}_q * s3.basis) - s3.basis)
                              WHEN 1 THEN 1 WHEN 0 THEN mod(s3.{p}_q, 2) ELSE 0 END) * 0.01
         ELSE s3.{p}_posted_before END AS {p}_posted"""

_DAY_SQL = """
WITH day AS MATERIALIZED (
    SELECT s4.loan_id, s4.base, s4.annual_rate, s4.penalty_rate, s4.accrues, s4.penal,
           s4.i_num, s4.i_posted, s4.p_num, s4.p_posted,
           s4.i_posted - s4.i_posted_before AS i_amount,
           s4.p_posted - s4.p_posted_before AS p_amount,
           (%(day)s > s4.due_date
            AND s4.base + s4.accrued_interest + s4.i_posted - s4.i_posted_before
                + s4.accrued_penalty + s4.p_posted - s4.p_posted_before > 0) AS past_due
    FROM (
        SELECT s3.*, {i_posted}, {p_posted}
        FROM (
            SELECT s2.*, {i_quotient}, {p_quotient}
            FROM (
                SELECT s1.*, {i_num}, {p_num}
                FROM (
                    SELECT l.id AS loan_id, l.outstanding_principal AS base, l.annual_rate,
                           l.penalty_rate, l.due_date, l.accrued_interest, l.accrued_penalty,
                           l.interest_numerator AS i_num_before,
                           l.interest_posted_cumulative AS i_posted_before,
                           l.penalty_numerator AS p_num_before,
                           l.penalty_posted_cumulative AS p_posted_before,
                           CASE l.day_count WHEN %(act365)s THEN 365 ELSE 360 END AS basis,
                           l.outstanding_principal > 0 AS accrues,
                           l.outstanding_principal > 0
                               AND %(day)s > l.due_date + l.grace_days AS penal
                    FROM {loans} l
                    WHERE l.program_id = %(program)s AND l.status IN %(open)s
                      AND l.value_date <= %(day)s
                      AND (l.accrued_through IS NULL OR l.accrued_through < %(day)s)
                    ORDER BY l.id
                    OFFSET 0
                ) s1
                OFFSET 0
            ) s2
            OFFSET 0
        ) s3
        OFFSET 0
    ) s4
),
ins AS (
    INSERT INTO {accruals}
        (loan_id, business_date, kind, base, annual_rate, numerator, amount, journal_entry_id)
    SELECT loan_id, %(day)s, %(interest_kind)s, base, annual_rate, i_num, i_amount,
           %(interest_entry)s
    FROM day WHERE accrues
    UNION ALL
    SELECT loan_id, %(day)s, %(penalty_kind)s, base, penalty_rate, p_num, p_amount,
           %(penalty_entry)s
    FROM day WHERE penal
    RETURNING kind, amount
),
upd AS (
    UPDATE {loans} l SET
        interest_numerator = d.i_num,
        interest_posted_cumulative = d.i_posted,
        accrued_interest = l.accrued_interest + d.i_amount,
        penalty_numerator = d.p_num,
        penalty_posted_cumulative = d.p_posted,
        accrued_penalty = l.accrued_penalty + d.p_amount,
        accrued_through = %(day)s,
        days_past_due = CASE WHEN d.past_due THEN %(day)s - l.due_date ELSE 0 END,
        status = CASE WHEN d.past_due THEN %(overdue)s ELSE l.status END
    FROM day d
    WHERE l.id = d.loan_id
    RETURNING l.id
)
SELECT 'loans', count(*), 0 FROM upd
UNION ALL
SELECT kind, count(*), coalesce(sum(amount), 0) FROM ins GROUP BY kind
"""


def day_sql() -> str:
    """The COB statement for one program and date (named parameters, see ``_accrue_day_sql``);
    tables named as the models name them."""
    qn = connection.ops.quote_name
    return _DAY_SQL.format(
        loans=qn(Loan._meta.db_table),
        accruals=qn(Accrual._meta.db_table),
        i_num=_NUMERATOR.format(flag="accrues", p="i", rate="annual_rate"),
        p_num=_NUMERATOR.format(flag="penal", p="p", rate="penalty_rate"),
        i_quotient=_QUOTIENT.format(flag="accrues", p="i"),
        p_quotient=_QUOTIENT.format(flag="penal", p="p"),
        i_posted=_POSTED.format(flag="accrues", p="i"),
        p_posted=_POSTED.format(flag="penal", p="p"),
    )


def _reserve_entry_ids(count: int) -> list[int]:
    table = JournalEntry._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [table, count],
        )
        return [int(row[0]) for row in cursor.fetchall()]


def _accrue_day_sql(
    program: Program, business_date: dt.date
) -> tuple[int, dict[AccrualKind, Decimal]]:
    """PostgreSQL: the whole day in one statement (see the module docstring)."""
    interest_id, penalty_id = _reserve_entry_ids(2)
    entry_ids = {AccrualKind.INTEREST: interest_id, AccrualKind.PENALTY: penalty_id}
    params: dict[str, Any] = {
        "day": business_date,
        "program": program.pk,
        "open": tuple(str(status) for status in OPEN),
        "overdue": LoanStatus.OVERDUE.value,
        "act365": "ACT/365F",
        "interest_kind": AccrualKind.INTEREST.value,
        "penalty_kind": AccrualKind.PENALTY.value,
        "interest_entry": interest_id,
        "penalty_entry": penalty_id,
    }
    with connection.cursor() as cursor:
        # Room for the day's rows and the join in memory: one statement, once a night.
        cursor.execute(f"SET LOCAL work_mem = '{COB_WORK_MEM}'")
        cursor.execute(day_sql(), params)
        result = cursor.fetchall()
    loans, totals = 0, {}
    for label, count, total in result:
        if label == "loans":
            loans = int(count)
            continue
        kind = AccrualKind(label)
        totals[kind] = Decimal(total)
        if totals[kind] > 0:
            _post_day(program, business_date, kind, totals[kind], entry_ids[kind])
        else:  # rows, but nothing to post: they must not point at an entry that never exists
            Accrual.objects.filter(journal_entry_id=entry_ids[kind]).update(journal_entry=None)
    return loans, totals
