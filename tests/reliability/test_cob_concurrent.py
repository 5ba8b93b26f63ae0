"""Scenario 16, COB twice or concurrently: exactly one accrual per (loan, date, kind).

* Two catch-up runs (``cob_run_through``, what the nightly task and ``manage.py cob`` call) race
  over twelve dates on separate connections, each date claimed by one of them; then both run
  again at once, then once more on their own: every (loan, date, kind) has exactly one active
  accrual row, each date one run and one journal entry per kind, and the books agree.
* The rule is the database's, not only the code's: a second active accrual row for the same
  (loan, date, kind), inserted by raw SQL past every service, is refused by the partial unique
  index ``uniq_active_accrual_per_loan_date_kind`` (a reversed row may repeat the key: that is
  how a backdated repayment replays a day); a second ``CobRun`` for a (program, date) likewise.

``tests/lending/test_cob.py`` races three runs of a single date; this races whole catch-ups.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Count

from lending.models import Accrual, AccrualKind, CobRun, EntryKind, JournalEntry
from lending.services.book_check import book_check
from lending.services.cob import cob_run_through
from tests.lending.active_loans import active_loan, money_line

from .race_helpers import failures, run_at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

V = dt.date(2025, 3, 3)
LAST = V + dt.timedelta(days=11)  # twelve nights: V .. V+11
DUE = V + dt.timedelta(days=5)  # grace 3 days: penalty from V+9, so both kinds accrue
LOANS = 6
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture
def program_with_loans(agent: Any, enterprise: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    line = money_line(agent, enterprise, grace_days=3)
    for i in range(LOANS):
        active_loan(line, principal=f"{10000 * (i + 1)}.00", value_date=V, due_date=DUE)
    # It is the morning after LAST in Shanghai: every date through LAST may be closed.
    now = dt.datetime.combine(LAST + dt.timedelta(days=1), dt.time(9), tzinfo=SHANGHAI)
    monkeypatch.setattr("scf.clock.now", lambda: now)
    return line.program


def _duplicates() -> list[Any]:
    return list(
        Accrual.objects.filter(reversed_at__isnull=True)
        .values("loan_id", "business_date", "kind")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )


def _catch_up(program_id: int) -> Any:
    return lambda: cob_run_through(through_date=LAST, program_ids=[program_id])


def test_racing_catch_ups_accrue_each_loan_date_and_kind_once(program_with_loans):
    program = program_with_loans
    nights = (LAST - V).days + 1
    penalty_nights = (LAST - (DUE + dt.timedelta(days=3))).days

    first = run_at_once([_catch_up(program.pk)] * 2)
    assert failures(first) == []
    ran = sorted(r.business_date for results in first for r in results if r.ran)
    assert ran == [V + dt.timedelta(days=n) for n in range(nights)]  # each date by one runner
    assert [r.error for results in first for r in results if r.error] == []

    for _ in range(2):  # again, concurrently; then alone: nothing more to close
        again = run_at_once([_catch_up(program.pk)] * 2)
        assert failures(again) == [] and [r for rs in again for r in rs if r.ran] == []
    before = (Accrual.objects.count(), JournalEntry.objects.count())
    assert [r for r in cob_run_through(through_date=LAST, program_ids=[program.pk]) if r.ran] == []
    assert (Accrual.objects.count(), JournalEntry.objects.count()) == before

    assert _duplicates() == []
    rows = Accrual.objects.filter(reversed_at__isnull=True)
    assert rows.filter(kind=AccrualKind.INTEREST).count() == LOANS * nights
    assert rows.filter(kind=AccrualKind.PENALTY).count() == LOANS * penalty_nights
    assert CobRun.objects.filter(program=program).count() == nights
    assert JournalEntry.objects.filter(kind=EntryKind.INTEREST_ACCRUAL).count() == nights
    assert JournalEntry.objects.filter(kind=EntryKind.PENALTY_ACCRUAL).count() == penalty_nights
    assert book_check() == []


def _insert_accrual(row: Accrual, *, reversed_at: dt.datetime | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO lending_accrual (loan_id, business_date, kind, base, annual_rate, "
            "numerator, amount, reversed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [
                row.loan_id,
                row.business_date,
                row.kind,
                row.base,
                row.annual_rate,
                row.numerator,
                Decimal("0.00"),
                reversed_at,
            ],
        )


def test_the_database_refuses_a_second_active_accrual_for_a_loan_date_and_kind(
    program_with_loans,
):
    cob_run_through(through_date=V, program_ids=[program_with_loans.pk])
    row = Accrual.objects.filter(business_date=V, kind=AccrualKind.INTEREST).first()
    assert row is not None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = %s",
            ["uniq_active_accrual_per_loan_date_kind"],
        )
        (indexdef,) = cursor.fetchone()
    assert "UNIQUE" in indexdef and "(loan_id, business_date, kind)" in indexdef
    assert "reversed_at IS NULL" in indexdef

    with (
        pytest.raises(IntegrityError, match="uniq_active_accrual_per_loan_date_kind"),
        transaction.atomic(),
    ):
        _insert_accrual(row)
    # A reversed row may share the key (a backdated repayment reverses, then replays the day).
    _insert_accrual(row, reversed_at=dt.datetime.now(dt.UTC))
    with (
        pytest.raises(IntegrityError, match="uniq_cob_program_date"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO lending_cobrun (program_id, business_date, started_at, "
            "loans_accrued, interest_total, penalty_total) VALUES (%s, %s, now(), 0, 0, 0)",
            [program_with_loans.pk, V],
        )
    assert _duplicates() == []
