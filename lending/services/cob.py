"""Close of business (COB): the nightly interest and penalty accrual of a program's open loans.

Design
------
* ``cob_run(program_id=..., business_date=D)`` closes one program's day D, in one transaction.
  It runs at most once: its first statement claims the ``CobRun`` row (unique per program and
  date) with ``INSERT ... ON CONFLICT DO NOTHING``; a second run finds the row taken and returns
  without posting anything, and a concurrent run waits on the unique index until the first
  commits, then does the same (or takes over if the first rolled back).
* Days are closed in order: D is refused (``cob_out_of_order``) unless D - 1 was closed or, for a
  program's first run, no open loan needed an earlier day. ``cob_run_through`` catches up: for
  every program it runs each missing date in order, from the day after its last run (or from
  the earliest value date of its loans) through the given date. A date later than today in the
  program's time zone is never closed.
* Repayments and COB of one program exclude each other with a PostgreSQL transaction-level
  advisory lock on the program: COB takes it exclusively, a repayment shares it, and both take it
  before any row lock, so they cannot deadlock; a repayment waits for the night's statement and
  then sees its result (and vice versa).
* Loans that fell behind (disbursed with a value date the COB had already closed) are first
  brought up to D - 1 one by one (``loan_accrue_through``); this is rare.
* **The day itself is set-based on PostgreSQL**: one statement whose materialised CTE computes
  every open loan's day (interest and penalty, exact half-even integer arithmetic identical to
  ``lending.services.accrual.daily_raw``/``round_cents``), then, from the same rows, one
  ``INSERT ... SELECT`` into ``lending_accrual`` (both kinds) and one ``UPDATE ... FROM`` of the
  loans' cumulative fields, balances, days past due and status; it returns only counts and
  totals. The general ledger gets one entry per (program, date, kind), Dr receivable / Cr
  income for the day's total; the accrual rows point at it. Its id is reserved from the
  sequence before the statement (foreign keys are deferred to commit), so the rows are written
  once, already linked. **On SQLite (the demo) the day is a Python loop over the loans**, calling
  the same ``accrue_day`` the tests check the SQL against.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from django.db import connection, transaction
from django.db.models import Field, Min, Q

from scf import clock
from scf.errors import ApplicationError, Conflict, ValidationFailed
from scf.sql import insert_rows

from ..models import (
    OPEN,
    Accrual,
    AccrualKind,
    CobRun,
    JournalEntry,
    Loan,
    LoanStatus,
    Program,
)
from .accrual import (
    ACCRUAL_FIELDS,
    RAW_SCALE,
    ZERO,
    AccrualTerms,
    DayAccrual,
    LoanState,
    accrual_entry_post,
    accrual_rows_save,
    accrue_day,
    days,
    loan_accrue_through,
    totals_by_kind,
)
from .audit import audit_record

logger = logging.getLogger(__name__)

# Advisory lock keys: this namespace in the high 32 bits, the program id in the low 32.
LOCK_NAMESPACE = 0x5CF0
COB_WORK_MEM = "256MB"


class CobOutOfOrder(Conflict):
    code = "cob_out_of_order"


class CobFutureDate(ValidationFailed):
    code = "cob_future_date"


@dataclass(frozen=True, slots=True)
class CobResult:
    program_id: int
    business_date: dt.date
    ran: bool
    loans_accrued: int = 0
    interest_total: Decimal = ZERO
    penalty_total: Decimal = ZERO
    caught_up: int = 0
    error: str = ""


def program_lock(program_id: int, *, exclusive: bool) -> None:
    """Take the program's COB/repayment advisory lock until the transaction ends (PostgreSQL).

    Elsewhere (SQLite) writers are serialised by the database anyway.
    """
    if connection.vendor != "postgresql":
        return
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s)", [(LOCK_NAMESPACE << 32) | program_id])


# --- one program, one date ----------------------------------------------------------------------


@transaction.atomic
def cob_run(*, program_id: int, business_date: dt.date, today: dt.date | None = None) -> CobResult:
    """Close ``business_date`` for one program: accrue every open loan, once.

    Returns ``ran=False`` when the date was already closed (nothing is posted). Raises
    ``CobFutureDate`` for a date after today in the program's zone and ``CobOutOfOrder`` when the
    previous date is still open.
    """
    program = Program.objects.get(pk=program_id)
    today = today or clock.business_date(program.time_zone)
    if business_date > today:
        raise CobFutureDate(
            f"{business_date} has not begun in {program.time_zone}; today is {today}.",
            fields={"date": ["The business date is in the future."]},
        )
    run_id = _claim(program, business_date)
    if run_id is None:
        return CobResult(program.pk, business_date, ran=False)
    _check_in_order(program, business_date)
    program_lock(program.pk, exclusive=True)
    caught_up = _catch_up_behind(program, business_date)
    if connection.vendor == "postgresql":
        loans, totals = _accrue_day_sql(program, business_date)
    else:
        loans, totals = _accrue_day_python(program, business_date)
    return _finish(program, business_date, run_id, loans, totals, caught_up)


def _claim(program: Program, business_date: dt.date) -> int | None:
    """Insert the run's row unless it exists; its id, or None when the date is already taken."""
    values = {
        "program_id": program.pk,
        "business_date": business_date,
        "started_at": clock.now(),
        "loans_accrued": 0,
        "interest_total": ZERO,
        "penalty_total": ZERO,
    }
    fields = {name: cast(Field, CobRun._meta.get_field(name)) for name in values}
    qn = connection.ops.quote_name
    returned = insert_rows(
        CobRun._meta.db_table,
        [str(field.column) for field in fields.values()],
        [[fields[n].get_db_prep_save(v, connection) for n, v in values.items()]],
        suffix=(
            f"ON CONFLICT ({qn('program_id')}, {qn('business_date')}) DO NOTHING "
            f"RETURNING {qn('id')}"
        ),
    )
    return int(returned[0][0]) if returned else None


def _check_in_order(program: Program, business_date: dt.date) -> None:
    previous = business_date - dt.timedelta(days=1)
    runs = CobRun.objects.filter(program=program)
    if runs.filter(business_date=previous).exists():
        return
    if runs.filter(business_date__lt=business_date).exists():
        raise CobOutOfOrder(f"Close of business for {previous} has not run for {program.code}.")
    waiting = (
        Loan.objects.filter(program=program, status__in=OPEN, value_date__lte=previous)
        .filter(Q(accrued_through__isnull=True) | Q(accrued_through__lt=previous))
        .exists()
    )
    if waiting:
        raise CobOutOfOrder(
            f"{program.code} has loans to accrue before {business_date}: catch up from the "
            "earliest value date (cob_run_through)."
        )


def _catch_up_behind(program: Program, business_date: dt.date) -> int:
    """Bring loans that missed earlier dates (late value dates) up to the day before, one by one."""
    previous = business_date - dt.timedelta(days=1)
    behind = (
        Loan.objects.select_for_update()
        .select_related("program")
        .filter(program=program, status__in=OPEN, value_date__lte=previous)
        .filter(Q(accrued_through__isnull=True) | Q(accrued_through__lt=previous))
        .order_by("pk")
    )
    count = 0
    for loan in behind:
        loan_accrue_through(loan=loan, through=previous, key=f"catchup:{loan.pk}:{previous}")
        count += 1
    return count


def _finish(
    program: Program,
    business_date: dt.date,
    run_id: int,
    loans: int,
    totals: dict[AccrualKind, Decimal],
    caught_up: int,
) -> CobResult:
    interest = totals.get(AccrualKind.INTEREST, ZERO)
    penalty = totals.get(AccrualKind.PENALTY, ZERO)
    CobRun.objects.filter(pk=run_id).update(
        finished_at=clock.now(),
        loans_accrued=loans,
        interest_total=interest,
        penalty_total=penalty,
    )
    run = CobRun.objects.get(pk=run_id)
    audit_record(
        actor=None,
        action="cob_run",
        obj=run,
        after={
            "program": program.code,
            "business_date": str(business_date),
            "loans_accrued": loans,
            "caught_up": caught_up,
            "interest_total": str(interest),
            "penalty_total": str(penalty),
        },
    )
    return CobResult(program.pk, business_date, True, loans, interest, penalty, caught_up)


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
    loans = list(_open_for_day(program, business_date).select_for_update())
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
# they are used, several times per loan. The arithmetic is accrual.py's:
# - units = base x rate x 10^12 is a whole number (2 + 6 places); the day is units / basis
#   rounded to a whole unit. round() goes half away from zero, but with a base in cents and a rate
#   in millionths the remainder is never exactly half the basis (365 is odd; for 360 it would
#   need units / 180 odd, and units carry a factor 2^4), so this equals the half-even of
#   ``daily_raw``. The quotient is computed to at least 8 places, far closer than the 1/730 that
#   separates any fraction from one half, so the rounding is exact.
# - posted cents: round() (half up on positive amounts), minus a cent on an exact tie whose lower
#   cent is even: half-even, as ``round_cents``.
_POSTED = """
    CASE WHEN s2.{flag} THEN round(s2.{p}_raw, 2)
              - CASE WHEN s2.{p}_raw * 100 = trunc(s2.{p}_raw * 100) + 0.5
                          AND mod(trunc(s2.{p}_raw * 100), 2) = 0
                     THEN 0.01 ELSE 0 END
         ELSE s2.{p}_posted_before END AS {p}_posted"""

_RAW = """
    CASE WHEN s1.{flag}
         THEN s1.{p}_raw_before + round(s1.base * s1.{rate} * {scale} / s1.basis) * {unit}
         ELSE s1.{p}_raw_before END AS {p}_raw"""

_DAY_SQL = """
WITH day AS MATERIALIZED (
    SELECT s3.loan_id, s3.base, s3.annual_rate, s3.penalty_rate, s3.accrues, s3.penal,
           s3.i_raw, s3.i_posted, s3.p_raw, s3.p_posted,
           s3.i_posted - s3.i_posted_before AS i_amount,
           s3.p_posted - s3.p_posted_before AS p_amount,
           (%(day)s > s3.due_date
            AND s3.base + s3.accrued_interest + s3.i_posted - s3.i_posted_before
                + s3.accrued_penalty + s3.p_posted - s3.p_posted_before > 0) AS past_due
    FROM (
        SELECT s2.*, {i_posted}, {p_posted}
        FROM (
            SELECT s1.*, {i_raw}, {p_raw}
            FROM (
                SELECT l.id AS loan_id, l.outstanding_principal AS base, l.annual_rate,
                       l.penalty_rate, l.due_date, l.accrued_interest, l.accrued_penalty,
                       l.interest_raw_cumulative AS i_raw_before,
                       l.interest_posted_cumulative AS i_posted_before,
                       l.penalty_raw_cumulative AS p_raw_before,
                       l.penalty_posted_cumulative AS p_posted_before,
                       CASE l.day_count WHEN %(act365)s THEN 365 ELSE 360 END AS basis,
                       l.outstanding_principal > 0 AS accrues,
                       l.outstanding_principal > 0
                           AND %(day)s > l.due_date + l.grace_days AS penal
                FROM lending_loan l
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
),
ins AS (
    INSERT INTO lending_accrual
        (loan_id, business_date, kind, base, annual_rate, raw_cumulative, amount,
         journal_entry_id)
    SELECT loan_id, %(day)s, %(interest_kind)s, base, annual_rate, i_raw, i_amount,
           %(interest_entry)s
    FROM day WHERE accrues
    UNION ALL
    SELECT loan_id, %(day)s, %(penalty_kind)s, base, penalty_rate, p_raw, p_amount,
           %(penalty_entry)s
    FROM day WHERE penal
    RETURNING kind, amount
),
upd AS (
    UPDATE lending_loan l SET
        interest_raw_cumulative = d.i_raw,
        interest_posted_cumulative = d.i_posted,
        accrued_interest = l.accrued_interest + d.i_amount,
        penalty_raw_cumulative = d.p_raw,
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
    """The COB statement for one program and date (named parameters, see ``_accrue_day_sql``)."""
    unit, scale = f"{Decimal(1).scaleb(-12):f}", str(RAW_SCALE)
    return _DAY_SQL.format(
        i_raw=_RAW.format(flag="accrues", p="i", rate="annual_rate", scale=scale, unit=unit),
        p_raw=_RAW.format(flag="penal", p="p", rate="penalty_rate", scale=scale, unit=unit),
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


# --- catching up --------------------------------------------------------------------------------


def cob_next_date(program: Program) -> dt.date | None:
    """The first date this program still has to close: after its last run, or its first loan."""
    last = CobRun.objects.filter(program=program).order_by("-business_date").first()
    if last is not None:
        return last.business_date + dt.timedelta(days=1)
    first = Loan.objects.filter(program=program, value_date__isnull=False).aggregate(
        first=Min("value_date")
    )["first"]
    return first


def cob_run_through(
    *, through_date: dt.date | None = None, program_ids: list[int] | None = None
) -> list[CobResult]:
    """Close every missing date, in order, for every program, up to ``through_date``.

    Without ``through_date`` each program is closed through *yesterday* in its own time zone
    (what the nightly task does); a date later than a program's today is capped at its today.
    Each (program, date) is its own transaction; a program whose run fails stops there (later
    dates would be out of order) and the others go on. Returns one result per date tried.
    """
    programs = Program.objects.order_by("pk")
    if program_ids is not None:
        programs = programs.filter(pk__in=program_ids)
    results: list[CobResult] = []
    for program in programs:
        results.extend(_program_through(program, through_date))
    return results


def _program_through(program: Program, through_date: dt.date | None) -> list[CobResult]:
    today = clock.business_date(program.time_zone)
    end = through_date or today - dt.timedelta(days=1)
    end = min(end, today)
    start = cob_next_date(program) or end
    results: list[CobResult] = []
    for day in days(start, end):
        try:
            results.append(cob_run(program_id=program.pk, business_date=day, today=today))
        except ApplicationError as exc:
            logger.error("COB %s %s failed: %s", program.code, day, exc.detail)
            results.append(CobResult(program.pk, day, ran=False, error=exc.detail))
            break
    return results
