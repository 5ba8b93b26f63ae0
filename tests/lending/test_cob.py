"""Close of business: once per program and date, in order, catching up, set-based on PostgreSQL.

The PostgreSQL statement is checked against the Python reference (``accrue_day``) over months of
mixed loans, and concurrent runs of one date are raced with real threads.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from lending.models import (
    AccountCode,
    Accrual,
    AccrualKind,
    CobRun,
    EntryKind,
    JournalEntry,
    JournalLine,
    Loan,
    LoanStatus,
)
from lending.services.accrual import AccrualTerms, LoanState, accrue_day
from lending.services.cob import CobFutureDate, CobOutOfOrder, cob_run, cob_run_through
from lending.services.repayments import repayment_record
from lending.tasks_money import cob_run_due
from tests.lending.active_loans import active_loan, books_balance, money_line
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.orders.factories import AgentFactory

D = Decimal
V = dt.date(2025, 1, 6)
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def day(n: int) -> dt.date:
    return V + dt.timedelta(days=n)


def freeze(monkeypatch: pytest.MonkeyPatch, at: dt.datetime) -> None:
    monkeypatch.setattr("scf.clock.now", lambda: at)


@pytest.fixture
def line(agent: Any, enterprise: Any) -> Any:
    return money_line(agent, enterprise)


def counts() -> tuple[int, int, int, int]:
    return (
        Accrual.objects.count(),
        JournalEntry.objects.count(),
        JournalLine.objects.count(),
        CobRun.objects.count(),
    )


@pytest.mark.django_db
def test_second_cob_for_a_date_posts_nothing(line: Any) -> None:
    loan = active_loan(line, principal="72000.00", value_date=V, annual_rate=D("0.05"))
    first = cob_run(program_id=line.program_id, business_date=V, today=V)
    before = counts()
    second = cob_run(program_id=line.program_id, business_date=V, today=V)

    # 72,000 x 5% / 360 = 10.00 for the night of V, posted once
    assert (first.ran, first.loans_accrued, first.interest_total) == (True, 1, D("10.00"))
    assert (second.ran, second.loans_accrued, second.interest_total) == (False, 0, D("0.00"))
    assert counts() == before
    loan.refresh_from_db()
    assert loan.accrued_interest == D("10.00")
    books_balance()


@pytest.mark.django_db
def test_catch_up_after_three_missed_days_posts_them_in_order(
    line: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    loan = active_loan(line, principal="72000.00", value_date=V, annual_rate=D("0.05"))
    cob_run(program_id=line.program_id, business_date=V, today=V)
    # Three nights missed (V+1 .. V+3); on V+4 at 09:00 in Shanghai the catch-up closes them.
    freeze(monkeypatch, dt.datetime.combine(day(4), dt.time(9), tzinfo=SHANGHAI))

    results = cob_run_through()

    assert [(r.business_date, r.ran) for r in results] == [
        (day(1), True),
        (day(2), True),
        (day(3), True),
    ]
    runs = CobRun.objects.filter(program_id=line.program_id).order_by("id")
    assert [r.business_date for r in runs] == [V, day(1), day(2), day(3)]
    assert list(
        Accrual.objects.filter(loan=loan).order_by("id").values_list("business_date", flat=True)
    ) == [V, day(1), day(2), day(3)]
    loan.refresh_from_db()
    assert (loan.accrued_interest, loan.accrued_through) == (D("40.00"), day(3))  # 4 x 10.00
    assert cob_run_through() == []  # nothing left to close today
    books_balance()


@pytest.mark.django_db
def test_cob_refuses_a_date_whose_previous_date_has_not_run(line: Any) -> None:
    active_loan(line, principal="72000.00", value_date=V)
    cob_run(program_id=line.program_id, business_date=V, today=day(5))
    with pytest.raises(CobOutOfOrder):
        cob_run(program_id=line.program_id, business_date=day(2), today=day(5))
    assert not CobRun.objects.filter(business_date=day(2)).exists()


@pytest.mark.django_db
def test_first_run_refuses_a_date_after_open_loans_value_dates(line: Any) -> None:
    active_loan(line, principal="72000.00", value_date=V)
    with pytest.raises(CobOutOfOrder, match="catch up"):
        cob_run(program_id=line.program_id, business_date=day(3), today=day(5))
    assert not Accrual.objects.exists() and not CobRun.objects.exists()


@pytest.mark.django_db
def test_cob_refuses_a_date_in_the_future_of_the_programs_zone(line: Any) -> None:
    with pytest.raises(CobFutureDate):
        cob_run(program_id=line.program_id, business_date=day(1), today=V)
    assert not CobRun.objects.exists()


@pytest.mark.django_db
def test_one_entry_per_program_date_and_kind_not_per_loan(line: Any) -> None:
    # Three loans at 5% ACT/360 (daily 10.00, 5.00, 2.50); the first overdue past grace, with
    # a 9% penalty (18.00 a day).
    rate = {"annual_rate": D("0.05"), "penalty_rate": D("0.09")}
    late = active_loan(
        line, principal="72000.00", value_date=V, due_date=day(1), grace_days=0, **rate
    )
    active_loan(line, principal="36000.00", value_date=V, **rate)
    active_loan(line, principal="18000.00", value_date=V, **rate)
    cob_run(program_id=line.program_id, business_date=V, today=day(2))
    cob_run(program_id=line.program_id, business_date=day(1), today=day(2))
    result = cob_run(program_id=line.program_id, business_date=day(2), today=day(2))

    assert (result.loans_accrued, result.interest_total, result.penalty_total) == (
        3,
        D("17.50"),  # 10.00 + 5.00 + 2.50
        D("18.00"),  # only the late loan, from day(2) (> due day(1) + 0 grace)
    )
    entries = JournalEntry.objects.filter(business_date=day(2), program_id=line.program_id)
    assert sorted(entries.values_list("kind", flat=True)) == ["interest_accrual", "penalty_accrual"]
    for entry in entries:
        lines = list(entry.lines.order_by("id"))
        assert len(lines) == 2 and all(x.loan_id is None for x in lines)
        linked = Accrual.objects.filter(journal_entry=entry)
        assert sum(r.amount for r in linked) == lines[0].debit == lines[1].credit
        assert linked.count() == (3 if entry.kind == EntryKind.INTEREST_ACCRUAL else 1)
    assert JournalLine.objects.get(
        entry__business_date=day(2), account=AccountCode.PENALTY_INCOME
    ).credit == D("18.00")
    late.refresh_from_db()
    assert (late.status, late.days_past_due, late.accrued_penalty) == ("overdue", 1, D("18.00"))
    run = CobRun.objects.get(business_date=day(2))
    assert (run.loans_accrued, run.interest_total, run.penalty_total) == (3, D("17.50"), D("18.00"))
    assert run.finished_at is not None
    books_balance()


@pytest.mark.django_db
def test_a_day_that_rounds_to_nothing_posts_no_entry(line: Any) -> None:
    # 10.00 x 3.65% / 365 = 0.001 a day: the first night rounds to 0.00 (no entry), rows kept.
    loan = active_loan(
        line, principal="10.00", value_date=V, annual_rate=D("0.0365"), day_count="ACT/365F"
    )
    result = cob_run(program_id=line.program_id, business_date=V, today=V)
    assert (result.loans_accrued, result.interest_total) == (1, D("0.00"))
    row = Accrual.objects.get(loan=loan)
    assert (row.amount, row.numerator, row.journal_entry_id) == (
        D("0.00"),
        D("0.365"),  # 10.00 x 3.65%; / 365 = 0.001
        None,
    )
    assert not JournalEntry.objects.filter(kind=EntryKind.INTEREST_ACCRUAL).exists()
    books_balance()


@pytest.mark.django_db
def test_loan_disbursed_with_a_past_value_date_is_caught_up(line: Any) -> None:
    first = active_loan(line, principal="36000.00", value_date=V, annual_rate=D("0.05"))
    for n in range(3):
        cob_run(program_id=line.program_id, business_date=day(n), today=day(3))
    # Settled late: value-dated V+1, but only active after the COB of V+2 ran.
    late = active_loan(line, principal="72000.00", value_date=day(1), annual_rate=D("0.05"))

    result = cob_run(program_id=line.program_id, business_date=day(3), today=day(3))

    assert result.caught_up == 1
    late.refresh_from_db()
    first.refresh_from_db()
    # late: nights V+1 .. V+3 = 3 x 10.00; first: 4 x 5.00
    assert (late.accrued_interest, late.accrued_through) == (D("30.00"), day(3))
    assert first.accrued_interest == D("20.00")
    catch_up = JournalEntry.objects.get(idempotency_key=f"catchup:{late.pk}:{day(2)}:interest")
    assert catch_up.lines.get(account=AccountCode.INTEREST_RECEIVABLE).debit == D("20.00")
    books_balance()


@pytest.mark.django_db
def test_repaid_loan_is_not_accrued(line: Any) -> None:
    loan = active_loan(line, principal="36000.00", value_date=V, annual_rate=D("0.05"))
    cob_run(program_id=line.program_id, business_date=V, today=day(1))
    # Night of V: 5.00. Repay 36,005.00 on V+1: nothing owed any more.
    repayment_record(
        loan=loan,
        amount=D("36005.00"),
        value_date=day(1),
        reference="PAY-1",
        source="api",
        actor=None,
        today=day(1),
    )
    result = cob_run(program_id=line.program_id, business_date=day(1), today=day(1))
    loan.refresh_from_db()
    assert result.loans_accrued == 0
    assert (loan.status, loan.accrued_interest, loan.outstanding_principal) == (
        LoanStatus.REPAID,
        D("0.00"),
        D("0.00"),
    )
    books_balance()


@pytest.mark.django_db
def test_cob_command_closes_through_the_date_and_prints_each_date(line: Any) -> None:
    active_loan(line, principal="72000.00", value_date=V, annual_rate=D("0.05"))
    out = StringIO()
    call_command("cob", "--date", str(day(2)), stdout=out)
    text = out.getvalue()
    code = line.program.code
    for n in range(3):
        assert f"{day(n)} {code}  loans 1  caught up 0  interest 10.00  penalty 0.00" in text
    assert "3 program-date(s) closed" in text
    again = StringIO()
    call_command("cob", "--date", str(day(2)), stdout=again)
    assert "0 program-date(s) closed" in again.getvalue()
    books_balance()


@pytest.mark.django_db
def test_cob_command_rejects_a_malformed_date() -> None:
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("cob", "--date", "06/01/2025", stdout=StringIO())


@pytest.mark.django_db
def test_nightly_task_closes_through_yesterday_in_each_programs_zone(
    enterprise: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    shanghai = money_line(AgentFactory(enterprises=[enterprise]), enterprise)
    new_york = money_line(
        AgentFactory(enterprises=[enterprise]), enterprise, time_zone="America/New_York"
    )
    for each in (shanghai, new_york):
        active_loan(each, principal="72000.00", value_date=V)
    # 2025-01-09 17:30 UTC: already the 10th in Shanghai, still the 9th in New York.
    freeze(monkeypatch, dt.datetime(2025, 1, 9, 17, 30, tzinfo=dt.UTC))

    assert cob_run_due.delay().get() == {"closed": 4 + 3, "failed": 0}

    last = {r.program_id: r.business_date for r in CobRun.objects.order_by("business_date")}
    assert last == {shanghai.program_id: day(3), new_york.program_id: day(2)}
    assert cob_run_due.delay().get() == {"closed": 0, "failed": 0}
    books_balance()


@pytest.mark.django_db
def test_programs_are_closed_independently(enterprise: Any) -> None:
    other = CreditLineFactory(
        agent=AgentFactory(enterprises=[enterprise]),
        program=ProgramFactory(enterprise=enterprise, limit=D("1000000.00")),
    )
    line = money_line(AgentFactory(enterprises=[enterprise]), enterprise)
    active_loan(line, principal="72000.00", value_date=V)
    active_loan(other, principal="72000.00", value_date=day(1))
    results = cob_run_through(through_date=day(1), program_ids=[line.program_id])
    assert [r.program_id for r in results] == [line.program_id, line.program_id]
    assert not CobRun.objects.filter(program_id=other.program_id).exists()


# --- PostgreSQL: the set-based statement ---------------------------------------------------------


def _reference_state(loan: Loan) -> LoanState:
    return LoanState(
        outstanding=loan.principal,
        interest=D("0.00"),
        penalty=D("0.00"),
        interest_numerator=D(0),
        interest_posted=D("0.00"),
        penalty_numerator=D(0),
        penalty_posted=D("0.00"),
        days_past_due=0,
        status="active",
        accrued_through=None,
    )


@pytest.mark.postgres
@pytest.mark.django_db
def test_set_based_statement_matches_the_python_reference_to_the_digit(line: Any) -> None:
    """40 loans of odd principals, both day counts, grace and penalty, over 75 nights."""
    rng = random.Random(20250106)
    loans = [
        active_loan(
            line,
            principal=f"{rng.randint(100, 5_000_000)}.{rng.randint(0, 99):02d}",
            value_date=day(rng.randint(0, 5)),
            due_date=day(rng.randint(10, 40)),
            grace_days=rng.randint(0, 5),
            annual_rate=D(rng.randint(1000, 150000)) / D(1_000_000),
            penalty_rate=D(rng.randint(1000, 200000)) / D(1_000_000),
            day_count=rng.choice(["ACT/360", "ACT/365F"]),
        )
        for _ in range(40)
    ]
    expected = {loan.pk: (_reference_state(loan), AccrualTerms.of(loan), []) for loan in loans}
    for n in range(75):
        cob_run(program_id=line.program_id, business_date=day(n), today=day(80))
        for loan in loans:
            state, terms, rows = expected[loan.pk]
            if day(n) >= terms.value_date:
                state, new_rows = accrue_day(state, terms, day(n))
                expected[loan.pk] = (state, terms, rows + new_rows)
    for loan in Loan.objects.filter(pk__in=expected):
        state, _, rows = expected[loan.pk]
        assert LoanState.of(loan) == state, loan.pk
        stored = Accrual.objects.filter(loan=loan).order_by("business_date", "kind")
        assert [(r.business_date, r.kind, r.base, r.numerator, r.amount) for r in stored] == sorted(
            (r.business_date, str(r.kind), r.base, r.numerator, r.amount) for r in rows
        )
    assert Loan.objects.filter(status="overdue").exists()
    assert Accrual.objects.filter(kind=AccrualKind.PENALTY).exists()
    books_balance()


@pytest.mark.postgres
@pytest.mark.django_db
def test_cob_runs_a_fixed_number_of_queries_whatever_the_number_of_loans(line: Any) -> None:
    def queries_for(business_date: dt.date) -> int:
        with CaptureQueriesContext(connection) as captured:
            cob_run(program_id=line.program_id, business_date=business_date, today=day(5))
        return len(captured)

    active_loan(line, principal="72000.00", value_date=V)
    queries_for(V)  # the first run also checks that no earlier date was needed
    few = queries_for(day(1))
    for _ in range(12):
        active_loan(line, principal="72000.00", value_date=day(2))
    many = queries_for(day(2))

    assert many == few
    assert Accrual.objects.filter(business_date=day(2)).count() == 13


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_of_one_date_post_once(line: Any) -> None:
    for _ in range(5):
        active_loan(line, principal="72000.00", value_date=V, annual_rate=D("0.05"))
    barrier = threading.Barrier(3)
    results: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(10)
            results.append(cob_run(program_id=line.program_id, business_date=V, today=V))
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    assert sorted(r.ran for r in results) == [False, False, True]
    assert Accrual.objects.count() == 5
    assert JournalEntry.objects.filter(kind=EntryKind.INTEREST_ACCRUAL).count() == 1
    assert sum(Loan.objects.values_list("accrued_interest", flat=True)) == D("50.00")
    books_balance()
