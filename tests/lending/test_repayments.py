"""Repayments: the waterfall, early and over-payment, exactly-once references, validation, and
backdated payments replayed so the loan ends as if the money had arrived on time (compared with
a twin loan that did receive it on time), plus the API.

Terms used throughout unless a test says otherwise: 100,000.00 at 5.4% ACT/360 (15.00 a night),
penalty 8.1% (22.50 a night on 100,000).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from lending.models import (
    AccountCode,
    Accrual,
    AuditLog,
    CreditLine,
    JournalEntry,
    Loan,
    LoanStatus,
    Program,
    Repayment,
)
from lending.selectors.ledger import loan_ledger_balances
from lending.services.accrual import LoanState
from lending.services.cob import cob_run
from lending.services.repayments import (
    LoanNotRepayable,
    RepaymentCurrencyMismatch,
    RepaymentInvalid,
    RepaymentReferenceReused,
    allocate,
    loan_for_reference,
    repayment_record,
)
from scf.money import Money
from tests.conftest import client_for
from tests.lending.active_loans import active_loan, books_balance, money_line
from tests.lending.ledger_reads import account_balance
from tests.orders.factories import AgentFactory, UserFactory

D = Decimal
V = dt.date(2025, 1, 6)
TERMS = {"annual_rate": D("0.054"), "penalty_rate": D("0.081")}


def day(n: int) -> dt.date:
    return V + dt.timedelta(days=n)


def close(program_id: int, first: int, last: int) -> None:
    """COB for V+first .. V+last."""
    for n in range(first, last + 1):
        assert cob_run(program_id=program_id, business_date=day(n), today=day(last)).ran


def pay(loan: Loan, amount: str, on: int, reference: str, today: int | None = None) -> Repayment:
    return repayment_record(
        loan=loan,
        amount=D(amount),
        value_date=day(on),
        reference=reference,
        source="api",
        actor=None,
        today=day(on if today is None else today),
    )


def fresh(loan: Loan) -> Loan:
    return Loan.objects.get(pk=loan.pk)


def snapshot(loan: Loan) -> tuple[Any, ...]:
    """Everything about a loan's money that must match its on-time twin."""
    loan = fresh(loan)
    rows = Accrual.objects.filter(loan=loan, reversed_at__isnull=True).order_by(
        "business_date", "kind"
    )
    ledger = loan_ledger_balances([loan.pk])[loan.pk]
    return (
        LoanState.of(loan),
        loan.closed_at is not None,
        [(r.business_date, r.kind, r.base, r.numerator, r.amount) for r in rows],
        ledger.principal,
        [
            (r.value_date, r.amount, r.to_penalty, r.to_interest, r.to_principal, r.to_overpayment)
            for r in loan.repayments.order_by("value_date", "id")
        ],
    )


@pytest.fixture
def line(agent: Any, enterprise: Any) -> CreditLine:
    return money_line(agent, enterprise)


def loan_in(line: CreditLine, **terms: Any) -> Loan:
    return active_loan(line, principal="100000.00", value_date=V, **{**TERMS, **terms})


# --- the waterfall ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_partial_repayments_go_to_penalty_then_interest_then_principal(line: CreditLine) -> None:
    loan = loan_in(line, due_date=day(30), grace_days=0)
    close(line.program_id, 0, 35)
    # interest: 36 nights x 15.00 = 540.00; penalty: nights V+31 .. V+35 = 5 x 22.50 = 112.50
    assert (fresh(loan).accrued_interest, fresh(loan).accrued_penalty) == (D("540.00"), D("112.50"))

    first = pay(loan, "100.00", 36, "P-1")
    second = pay(loan, "100.00", 36, "P-2")
    third = pay(loan, "1000.00", 36, "P-3")

    allocation = [(r.to_penalty, r.to_interest, r.to_principal) for r in (first, second, third)]
    assert allocation == [
        (D("100.00"), D("0.00"), D("0.00")),
        (D("12.50"), D("87.50"), D("0.00")),  # 112.50 - 100.00 = 12.50 penalty left
        (D("0.00"), D("452.50"), D("547.50")),  # 540.00 - 87.50 = 452.50 interest left
    ]
    loan = fresh(loan)
    assert (loan.accrued_penalty, loan.accrued_interest) == (D("0.00"), D("0.00"))
    assert loan.outstanding_principal == D("99452.50")  # 100,000 - 547.50
    assert (loan.status, loan.days_past_due) == (LoanStatus.OVERDUE, 5)
    assert CreditLine.objects.get(pk=line.pk).outstanding_principal == D("99452.50")
    assert Program.objects.get(pk=line.program_id).outstanding_principal == D("99452.50")

    close(line.program_id, 36, 36)
    loan = fresh(loan)
    # interest: numerator 36 x 5,400 + 99,452.50 x 5.4% = 199,770.435; / 360 = 554.917875
    #   -> 554.92, +14.92 on the 540.00 posted
    # penalty: 5 x 8,100 + 99,452.50 x 8.1% = 48,555.6525; / 360 = 134.8768125 -> 134.88, +22.38
    assert (loan.accrued_interest, loan.accrued_penalty) == (D("14.92"), D("22.38"))
    assert loan.interest_numerator == D("199770.435")
    assert loan.penalty_numerator == D("48555.6525")
    assert loan.days_past_due == 6
    books_balance()


@pytest.mark.django_db
def test_early_repayment_in_full_closes_the_loan_and_releases_credit(line: CreditLine) -> None:
    loan = loan_in(line)
    close(line.program_id, 0, 9)
    # disbursed V, repaid V+10: 10 nights x 15.00 = 150.00 of interest
    repayment = pay(loan, "100150.00", 10, "EARLY-1")

    assert (repayment.to_interest, repayment.to_principal, repayment.to_overpayment) == (
        D("150.00"),
        D("100000.00"),
        D("0.00"),
    )
    loan = fresh(loan)
    assert loan.status == LoanStatus.REPAID and loan.closed_at is not None
    assert (loan.outstanding_principal, loan.accrued_interest, loan.days_past_due) == (
        D("0.00"),
        D("0.00"),
        0,
    )
    assert CreditLine.objects.get(pk=line.pk).outstanding_principal == D("0.00")
    assert Program.objects.get(pk=line.program_id).outstanding_principal == D("0.00")
    assert (
        cob_run(program_id=line.program_id, business_date=day(10), today=day(10)).loans_accrued == 0
    )
    assert Accrual.objects.filter(loan=loan).count() == 10
    entry = JournalEntry.objects.get(idempotency_key="repay:EARLY-1")
    assert sorted((x.account, x.debit, x.credit, x.loan_id) for x in entry.lines.all()) == [
        (AccountCode.INTEREST_RECEIVABLE, D("0.00"), D("150.00"), loan.pk),
        (AccountCode.PRINCIPAL_RECEIVABLE, D("0.00"), D("100000.00"), loan.pk),
        (AccountCode.SETTLEMENT, D("100150.00"), D("0.00"), loan.pk),
    ]
    books_balance()


@pytest.mark.django_db
def test_overpayment_is_owed_back_to_the_agent(line: CreditLine) -> None:
    loan = loan_in(line)
    close(line.program_id, 0, 9)
    repayment = pay(loan, "100200.00", 10, "OVER-1")  # owed 100,150.00: 50.00 too much
    assert repayment.to_overpayment == D("50.00")
    assert account_balance(AccountCode.AGENT_OVERPAYMENTS) == D("50.00")
    # Money arriving after the loan is repaid is all overpayment.
    late = pay(loan, "10.00", 12, "OVER-2")
    assert (late.to_principal, late.to_overpayment) == (D("0.00"), D("10.00"))
    assert fresh(loan).status == LoanStatus.REPAID
    books_balance()


@pytest.mark.django_db
def test_repayment_on_the_value_date_owes_no_interest(line: CreditLine) -> None:
    loan = loan_in(line)
    repayment = pay(loan, "100000.00", 0, "SAME-DAY")  # disbursed and repaid on V: 0 nights
    assert (repayment.to_principal, repayment.to_overpayment) == (D("100000.00"), D("0.00"))
    assert fresh(loan).status == LoanStatus.REPAID
    assert cob_run(program_id=line.program_id, business_date=V, today=V).loans_accrued == 0
    books_balance()


@given(
    amount=st.decimals(min_value=D("0.01"), max_value=D("1000000"), places=2),
    penalty=st.decimals(min_value=D(0), max_value=D("5000"), places=2),
    interest=st.decimals(min_value=D(0), max_value=D("5000"), places=2),
    principal=st.decimals(min_value=D(0), max_value=D("500000"), places=2),
)
@settings(max_examples=300, deadline=None)
def test_allocation_sums_to_the_payment_and_follows_the_waterfall(
    amount: Decimal, penalty: Decimal, interest: Decimal, principal: Decimal
) -> None:
    state = LoanState(
        principal, interest, penalty, D(0), interest, D(0), penalty, 0, "active", None
    )
    a = allocate(amount, state)
    assert a.penalty + a.interest + a.principal + a.overpayment == amount
    assert min(a.penalty, a.interest, a.principal, a.overpayment) >= 0
    assert a.penalty <= penalty and a.interest <= interest and a.principal <= principal
    if a.interest > 0:
        assert a.penalty == penalty  # interest only once penalty is cleared
    if a.principal > 0:
        assert a.interest == interest
    if a.overpayment > 0:
        assert a.principal == principal


# --- exactly once, validation -------------------------------------------------------------------


@pytest.mark.django_db
def test_repeated_reference_returns_the_first_repayment_and_changes_nothing(
    line: CreditLine,
) -> None:
    loan = loan_in(line)
    close(line.program_id, 0, 4)
    first = pay(loan, "500.00", 5, "DUP-1")
    before = (snapshot(loan), JournalEntry.objects.count(), AuditLog.objects.count())

    again = pay(loan, "500.00", 5, "DUP-1")

    assert again.pk == first.pk
    assert (snapshot(loan), JournalEntry.objects.count(), AuditLog.objects.count()) == before
    with pytest.raises(RepaymentReferenceReused):
        pay(loan, "600.00", 5, "DUP-1")
    assert Repayment.objects.count() == 1
    books_balance()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("amount", "field"),
    [
        (D("0.00"), "amount"),
        (D("-1.00"), "amount"),
        (D("1.005"), "amount"),
        (D("NaN"), "amount"),
        (D("1000000000000000.01"), "amount"),
        (1.5, "amount"),
        (Money(D("10.00"), "USD"), "currency"),
    ],
)
def test_invalid_amounts_are_refused_before_anything_is_written(
    line: CreditLine, amount: Any, field: str
) -> None:
    loan = loan_in(line)
    before = snapshot(loan)
    with pytest.raises((RepaymentInvalid, RepaymentCurrencyMismatch)) as caught:
        repayment_record(
            loan=loan,
            amount=amount,
            value_date=V,
            reference="BAD-1",
            source="api",
            actor=None,
            today=V,
        )
    assert list(caught.value.fields) == [field]
    assert snapshot(loan) == before and not Repayment.objects.exists()


@pytest.mark.django_db
def test_value_date_in_the_future_or_before_the_loan_is_refused(line: CreditLine) -> None:
    loan = loan_in(line)
    with pytest.raises(RepaymentInvalid, match="future"):
        pay(loan, "10.00", 3, "FUT-1", today=2)
    with pytest.raises(RepaymentInvalid, match="value date"):
        pay(loan, "10.00", -1, "EARLY-VD", today=2)
    with pytest.raises(RepaymentInvalid) as caught:
        pay(loan, "10.00", 1, "bad reference with spaces", today=2)
    assert list(caught.value.fields) == ["reference"]
    assert not Repayment.objects.exists()


@pytest.mark.django_db
def test_a_loan_not_yet_disbursed_cannot_be_repaid(line: CreditLine) -> None:
    loan = loan_in(line)
    Loan.objects.filter(pk=loan.pk).update(status=LoanStatus.APPROVED)
    with pytest.raises(LoanNotRepayable):
        pay(fresh(loan), "10.00", 1, "NOPE-1", today=2)
    assert not Repayment.objects.exists()


@pytest.mark.django_db
def test_loan_for_reference_finds_the_quoted_loan(line: CreditLine) -> None:
    loan = loan_in(line)
    assert loan_for_reference(loan.reference) == loan
    assert loan_for_reference(f"  {loan.reference.lower()} ") == loan
    assert loan_for_reference("SCF-NOT-A-LOAN") is None
    assert loan_for_reference("") is None


# --- value dates ahead of and behind the accruals -------------------------------------------------


@pytest.mark.django_db
def test_payment_ahead_of_a_lagging_cob_meets_the_balances_of_its_value_date(
    line: CreditLine,
) -> None:
    lagging, twin = loan_in(line), loan_in(line)
    close(line.program_id, 0, 2)
    # COB stopped after V+2; the agent pays on V+6. The loan is accrued up to V+5 first
    # (6 nights x 15.00 = 90.00 in all), then the payment meets those balances.
    repayment = pay(lagging, "20090.00", 6, "AHEAD-1")
    assert (repayment.to_interest, repayment.to_principal) == (D("90.00"), D("20000.00"))
    assert fresh(lagging).accrued_through == day(5)
    # The twin pays on time after COB V+3 .. V+5; then the night of V+6 closes for both.
    close(line.program_id, 3, 5)
    pay(twin, "20090.00", 6, "AHEAD-TWIN")
    close(line.program_id, 6, 6)
    assert snapshot(lagging) == snapshot(twin)
    # night of V+6 on 80,000: 12.00
    assert fresh(lagging).accrued_interest == D("12.00")
    books_balance()


@pytest.mark.django_db
def test_backdated_repayment_across_a_cob_matches_the_on_time_twin(line: CreditLine) -> None:
    backdated, twin = loan_in(line), loan_in(line)
    close(line.program_id, 0, 9)
    pay(twin, "30150.00", 10, "ON-TIME")  # 10 nights x 15.00 + 30,000 principal
    close(line.program_id, 10, 19)

    repayment = pay(backdated, "30150.00", 10, "LATE", today=20)

    assert repayment.backdated
    assert (repayment.to_interest, repayment.to_principal) == (D("150.00"), D("30000.00"))
    assert snapshot(backdated) == snapshot(twin)
    loan = fresh(backdated)
    # V+10 .. V+19 on 70,000 at 10.50 a night: 105.00 outstanding interest
    assert (loan.outstanding_principal, loan.accrued_interest) == (D("70000.00"), D("105.00"))
    # The reversed nights (10 x 15.00) and their replay (10 x 10.50) are in the ledger.
    reversal = JournalEntry.objects.get(idempotency_key="reverse:LATE:interest")
    assert reversal.lines.get(account=AccountCode.INTEREST_RECEIVABLE).credit == D("150.00")
    replay = JournalEntry.objects.get(idempotency_key="replay:LATE:interest")
    assert replay.lines.get(account=AccountCode.INTEREST_RECEIVABLE).debit == D("105.00")
    assert Accrual.objects.filter(loan=backdated, reversed_at__isnull=False).count() == 10
    assert CreditLine.objects.get(pk=line.pk).outstanding_principal == D("140000.00")
    books_balance()


@pytest.mark.django_db
def test_backdated_repayment_across_the_due_date_recomputes_penalty_and_dpd(
    line: CreditLine,
) -> None:
    terms = {"due_date": day(30), "grace_days": 3}
    backdated, twin = loan_in(line, **terms), loan_in(line, **terms)
    close(line.program_id, 0, 19)
    pay(twin, "50300.00", 20, "DUE-ON-TIME")  # 20 x 15.00 = 300.00 interest, 50,000 principal
    close(line.program_id, 20, 45)
    before = fresh(backdated)
    # without the payment: 46 nights x 15.00 = 690.00; penalty V+34 .. V+45 = 12 x 22.50
    assert (before.accrued_interest, before.accrued_penalty) == (D("690.00"), D("270.00"))

    pay(backdated, "50300.00", 20, "DUE-LATE", today=46)

    assert snapshot(backdated) == snapshot(twin)
    loan = fresh(backdated)
    # on 50,000 from V+20: 26 nights x 7.50 = 195.00; penalty 12 x 11.25 = 135.00; DPD 15
    assert (loan.accrued_interest, loan.accrued_penalty) == (D("195.00"), D("135.00"))
    assert (loan.status, loan.days_past_due) == (LoanStatus.OVERDUE, 15)
    books_balance()


@pytest.mark.django_db
def test_backdated_payment_in_full_before_the_due_date_clears_penalty_and_overdue(
    line: CreditLine,
) -> None:
    loan = loan_in(line, due_date=day(30), grace_days=3)
    close(line.program_id, 0, 45)
    assert fresh(loan).status == LoanStatus.OVERDUE

    pay(loan, "100300.00", 20, "FULL-LATE", today=46)  # 20 nights x 15.00 + principal

    loan = fresh(loan)
    assert (loan.status, loan.days_past_due) == (LoanStatus.REPAID, 0)
    assert (loan.accrued_interest, loan.accrued_penalty) == (D("0.00"), D("0.00"))
    assert loan.closed_at is not None
    assert Accrual.objects.filter(loan=loan, reversed_at__isnull=True).count() == 20
    assert loan.penalty_posted_cumulative == D("0.00")
    assert Program.objects.get(pk=line.program_id).outstanding_principal == D("0.00")
    books_balance()


@pytest.mark.django_db
def test_two_backdated_repayments_in_either_order_match_the_on_time_twin(
    line: CreditLine,
) -> None:
    terms = {"due_date": day(18), "grace_days": 2}
    in_order, reversed_order, twin = (loan_in(line, **terms) for _ in range(3))
    close(line.program_id, 0, 7)
    pay(twin, "20000.00", 8, "TWIN-1")
    close(line.program_id, 8, 14)
    pay(twin, "30000.00", 15, "TWIN-2")
    close(line.program_id, 15, 25)

    pay(in_order, "20000.00", 8, "A-1", today=26)
    pay(in_order, "30000.00", 15, "A-2", today=26)
    pay(reversed_order, "30000.00", 15, "B-2", today=26)
    pay(reversed_order, "20000.00", 8, "B-1", today=26)

    assert snapshot(in_order) == snapshot(twin)
    assert snapshot(reversed_order) == snapshot(twin)
    # B-2 arrived first and took 30,000 against the old balances; B-1's replay re-allocated it.
    realloc = JournalEntry.objects.filter(idempotency_key__startswith="realloc:B-1:")
    assert realloc.count() == 1
    assert JournalEntry.objects.filter(idempotency_key__startswith="unapply:B-1:").count() == 1
    books_balance()


@pytest.mark.django_db
def test_backdated_payment_before_a_payoff_turns_part_of_the_payoff_into_overpayment(
    line: CreditLine,
) -> None:
    loan, twin = loan_in(line), loan_in(line)
    close(line.program_id, 0, 9)
    pay(twin, "10150.00", 10, "TWIN-PART")
    close(line.program_id, 10, 19)
    pay(twin, "100000.00", 20, "TWIN-PAYOFF")
    pay(loan, "100000.00", 20, "PAYOFF", today=20)  # interest 300.00, principal 99,700.00
    assert fresh(loan).outstanding_principal == D("300.00")

    pay(loan, "10150.00", 10, "PART-LATE", today=25)

    assert snapshot(loan) == snapshot(twin)
    payoff = Repayment.objects.get(reference="PAYOFF")
    # after 10,150 on V+10: 90,000 left, 10 nights x 13.50 = 135.00 -> payoff overpays 9,865.00
    assert (payoff.to_interest, payoff.to_principal, payoff.to_overpayment) == (
        D("135.00"),
        D("90000.00"),
        D("9865.00"),
    )
    assert fresh(loan).status == LoanStatus.REPAID
    assert account_balance(AccountCode.AGENT_OVERPAYMENTS) == D("19730.00")  # both loans
    books_balance()


# --- PostgreSQL: concurrency ---------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_repeats_of_one_reference_apply_once(line: CreditLine) -> None:
    loan = loan_in(line)
    barrier = threading.Barrier(4)
    results: list[int] = []
    errors: list[BaseException] = []

    def record() -> None:
        try:
            barrier.wait(10)
            results.append(pay(loan, "1000.00", 0, "RACE-1", today=1).pk)
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=record) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == [] and len(set(results)) == 1 and len(results) == 4
    assert fresh(loan).outstanding_principal == D("99000.00")
    assert JournalEntry.objects.filter(idempotency_key__startswith="repay:").count() == 1
    books_balance()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_repayments_racing_the_cob_leave_the_books_consistent(line: CreditLine) -> None:
    loans = [loan_in(line) for _ in range(6)]
    close(line.program_id, 0, 4)
    barrier = threading.Barrier(len(loans) + 1)
    errors: list[BaseException] = []

    def repay(loan: Loan) -> None:
        try:
            barrier.wait(10)
            pay(loan, "10075.00", 5, f"RACE-{loan.pk}", today=5)
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)
        finally:
            connection.close()

    def close_day() -> None:
        try:
            barrier.wait(10)
            cob_run(program_id=line.program_id, business_date=day(5), today=day(5))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=repay, args=(loan,)) for loan in loans]
    threads.append(threading.Thread(target=close_day))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert errors == []
    # Whichever ran first, each loan paid 75.00 interest (5 nights) and 10,000 principal on V+5,
    # and the night of V+5 accrued on 90,000 (13.50): a COB first means the payment is backdated.
    for loan in loans:
        loan = fresh(loan)
        assert (loan.outstanding_principal, loan.accrued_interest) == (D("90000.00"), D("13.50"))
    books_balance()


# --- the API -------------------------------------------------------------------------------------


def url(loan: Loan) -> str:
    return f"/api/v1/loans/{loan.pk}/repayments/"


@pytest.fixture
def ops(db: Any) -> Any:
    return client_for(UserFactory(role="ops_admin"))


@pytest.fixture
def api_loan(line: CreditLine) -> Loan:
    today = dt.date.today()
    loan = active_loan(
        line, principal="100000.00", value_date=today - dt.timedelta(days=1), **TERMS
    )
    return loan


@pytest.mark.django_db
def test_api_records_a_repayment_once_and_replies_with_the_allocation(
    ops: Any, api_loan: Loan
) -> None:
    body = {"amount": "2500.00", "value_date": str(api_loan.value_date), "reference": "API-1"}
    first = ops.post(url(api_loan), body, format="json")
    assert first.status_code == 201, first.content
    data = first.json()
    assert data["allocation"] == {
        "penalty": "0.00",
        "interest": "0.00",
        "principal": "2500.00",
        "overpayment": "0.00",
    }
    assert data["loan"]["outstanding_principal"] == "97500.00"
    assert (data["loan"]["status"], data["amount"], data["reference"]) == (
        "active",
        "2500.00",
        "API-1",
    )

    again = ops.post(url(api_loan), body, format="json")
    assert again.status_code == 200 and again.json() == data
    assert Repayment.objects.count() == 1
    listed = ops.get(url(api_loan)).json()
    assert listed["count"] == 1 and listed["results"][0]["reference"] == "API-1"
    books_balance()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"amount": 100.5}, 400, "amount"),
        ({"amount": "NaN"}, 400, "amount"),
        ({"amount": "1.005"}, 400, "amount"),
        ({"amount": "0"}, 400, "amount"),
        ({"amount": "-5.00"}, 400, "amount"),
        ({"amount": "1000000000000000.01"}, 422, "amount"),
        ({"currency": "USD"}, 422, "currency"),
        ({"value_date": "2999-01-01"}, 422, "value_date"),
        ({"value_date": "01/02/2025"}, 400, "value_date"),
        ({"reference": ""}, 400, "reference"),
    ],
)
def test_api_refuses_bad_input_with_field_errors_and_writes_nothing(
    ops: Any, api_loan: Loan, body: dict[str, Any], status: int, field: str
) -> None:
    payload = {"amount": "10.00", "value_date": str(api_loan.value_date), "reference": "BAD"}
    response = ops.post(url(api_loan), {**payload, **body}, format="json")
    assert response.status_code == status, response.content
    assert field in response.json()["fields"]
    assert not Repayment.objects.exists()
    assert fresh(api_loan).outstanding_principal == D("100000.00")


@pytest.mark.django_db
def test_api_refuses_a_json_nan_literal(ops: Any, api_loan: Loan) -> None:
    raw = f'{{"amount": NaN, "value_date": "{api_loan.value_date}", "reference": "NAN-1"}}'
    response = ops.post(url(api_loan), raw, content_type="application/json")
    assert response.status_code == 400
    assert not Repayment.objects.exists()


@pytest.mark.django_db
def test_api_roles_and_parties(api_loan: Loan, enterprise: Any, agent_user: Any) -> None:
    other_agent = UserFactory(role="agent", agent=AgentFactory(enterprises=[enterprise]))
    body = {"amount": "10.00", "value_date": str(api_loan.value_date), "reference": "ROLE-1"}
    posts = {
        "agent": client_for(agent_user),
        "other_agent": client_for(other_agent),
        "admin": client_for(UserFactory(role="enterprise_admin", enterprise=enterprise)),
        "reviewer": client_for(UserFactory(role="risk_reviewer")),
        "approver": client_for(UserFactory(role="risk_approver")),
    }
    for name, client in posts.items():
        assert client.post(url(api_loan), body, format="json").status_code == 403, name
    assert not Repayment.objects.exists()
    reads = {"agent": 200, "other_agent": 404, "admin": 200, "reviewer": 200, "approver": 200}
    for name, expected in reads.items():
        assert posts[name].get(url(api_loan)).status_code == expected, name
    assert APIClient().post(url(api_loan), body, format="json").status_code == 401
    assert APIClient().get(url(api_loan)).status_code == 401


@pytest.mark.django_db
def test_api_unknown_loan_is_404(ops: Any) -> None:
    body = {"amount": "10.00", "value_date": "2025-01-06", "reference": "GHOST-1"}
    assert ops.post("/api/v1/loans/999999/repayments/", body, format="json").status_code == 404


@pytest.mark.django_db
def test_api_schema_describes_the_repayment_endpoints(ops: Any) -> None:
    schema = ops.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    operations = paths["/api/v1/loans/{loan_id}/repayments/"]
    assert operations["post"]["operationId"] == "loans_repayments_create"
    assert operations["get"]["operationId"] == "loans_repayments_list"
