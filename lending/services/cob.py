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
* **Guarantee claims** (``lending.services.claims``): after the accrual, in the same
  transaction, claims past their window are escalated and loans of a tripartite program that
  reached its trigger raise their claim on the core enterprise.
* **The day itself** (``lending.services.cob_day``) is one set-based statement on PostgreSQL
  (an ``INSERT ... SELECT`` into the accrual sub-ledger and an ``UPDATE ... FROM`` of the loans,
  fed by one computation of every loan's day) and one journal entry per (program, date, kind);
  on SQLite (the demo) it is a Python loop over the loans.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from django.db import connection, transaction
from django.db.models import Field, Min, Q

from scf import clock
from scf.errors import ApplicationError, Conflict, ValidationFailed
from scf.sql import insert_rows

from ..locks import loans_locked, program_lock
from ..models import (
    OPEN,
    AccrualKind,
    CobRun,
    Loan,
    Program,
)
from .accrual import ZERO, days
from .accrual_loan import loan_accrue_through
from .audit import audit_record
from .claims import ClaimsResult, cob_claims
from .cob_day import cob_day_accrue

logger = logging.getLogger(__name__)

# Advisory lock keys: this namespace in the high 32 bits, the program id in the low 32.


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
    loans, totals = cob_day_accrue(program=program, business_date=business_date)
    claims = cob_claims(program=program, business_date=business_date, today=today)
    return _finish(program, business_date, run_id, loans, totals, caught_up, claims)


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
        loans_locked()  # not the joined program row
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
    claims: ClaimsResult,
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
            "claims_raised": claims.raised,
            "claims_cap_exhausted": claims.cap_exhausted,
            "claims_amount": str(claims.amount),
            "claims_escalated": claims.escalated,
        },
    )
    return CobResult(program.pk, business_date, True, loans, interest, penalty, caught_up)


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
