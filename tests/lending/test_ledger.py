"""The ledger: posting, idempotency, reversal, balances, database guards, and ledger_check."""

from __future__ import annotations

import datetime as dt
import json
import threading
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, InternalError, connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lending.models import (
    AccountCode,
    CreditLine,
    EntryKind,
    JournalEntry,
    JournalLine,
    Loan,
    LoanStatus,
    Program,
)
from lending.selectors.ledger import loan_ledger_balances
from lending.services.book_check import book_check
from lending.services.ledger import (
    LedgerAlreadyReversed,
    LedgerCurrencyMismatch,
    LedgerError,
    LedgerKeyReused,
    LedgerUnbalanced,
    Posting,
    ledger_post,
    ledger_reverse,
)
from tests.lending.ledger_reads import account_balance
from tests.orders.factories import OrderFactory

DAY = dt.date(2025, 1, 6)
A = AccountCode
SETTLEMENT = A.SETTLEMENT
PRINCIPAL = A.PRINCIPAL_RECEIVABLE
INTEREST = A.INTEREST_RECEIVABLE
OVERPAY = A.AGENT_OVERPAYMENTS


def d(text: str) -> Decimal:
    return Decimal(text)


def make_loan(
    line: CreditLine,
    *,
    status: str = LoanStatus.ACTIVE,
    principal: str = "8000.00",
    outstanding: str = "0.00",
    reserved: str = "0.00",
) -> Loan:
    order = OrderFactory(agent=line.agent, enterprise=line.program.enterprise)
    program = line.program
    return Loan.objects.create(
        program=program,
        credit_line=line,
        agent=line.agent,
        order=order,
        status=status,
        currency=program.currency,
        order_amount=order.amount,
        principal=d(principal),
        advance_rate=program.advance_rate,
        annual_rate=program.annual_rate,
        penalty_rate=program.penalty_rate,
        day_count=program.day_count,
        tenor_days=program.tenor_days,
        grace_days=program.grace_days,
        reserved_amount=d(reserved),
        outstanding_principal=d(outstanding),
        due_date=DAY + dt.timedelta(days=program.tenor_days),
        reference=f"L-{order.pk:08d}",
        requested_at=dt.datetime(2025, 1, 6, 2, tzinfo=dt.UTC),
    )


def disburse(loan: Loan, amount: str = "8000.00", key: str | None = None) -> JournalEntry:
    return ledger_post(
        kind=EntryKind.DISBURSEMENT,
        idempotency_key=key or f"disburse:{loan.pk}",
        business_date=DAY,
        currency=loan.currency,
        postings=[
            Posting.dr(PRINCIPAL, d(amount), loan=loan),
            Posting.cr(SETTLEMENT, d(amount), loan=loan),
        ],
        loan=loan,
        program=loan.program,
        description="disbursement settled",
    )


def transfer(key: str, amount: str = "100.00", currency: str = "CNY") -> JournalEntry:
    """An entry that needs no loan: cash in, owed back to the agent."""
    return ledger_post(
        kind=EntryKind.REPAYMENT,
        idempotency_key=key,
        business_date=DAY,
        currency=currency,
        postings=[Posting.dr(SETTLEMENT, d(amount)), Posting.cr(OVERPAY, d(amount))],
    )


@pytest.fixture
def loan(line: CreditLine) -> Loan:
    return make_loan(line, outstanding="8000.00")


# Posting --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_balanced_entry_is_posted_with_its_lines(loan: Loan) -> None:
    entry = disburse(loan)

    stored = JournalEntry.objects.get(pk=entry.pk)
    assert (stored.kind, stored.currency, stored.loan_id) == ("disbursement", "CNY", loan.pk)
    assert stored.program_id == loan.program_id
    assert stored.business_date == DAY
    lines = list(stored.lines.values_list("account", "loan_id", "currency", "debit", "credit"))
    assert sorted(lines) == [
        ("principal_receivable", loan.pk, "CNY", d("8000.00"), d("0.00")),
        ("settlement", loan.pk, "CNY", d("0.00"), d("8000.00")),
    ]


@pytest.mark.django_db
def test_unbalanced_entry_is_refused_before_any_query(django_assert_num_queries: Any) -> None:
    postings = [Posting.dr(SETTLEMENT, d("100.00")), Posting.cr(OVERPAY, d("99.99"))]
    with django_assert_num_queries(0), pytest.raises(LedgerUnbalanced) as caught:
        ledger_post(
            kind=EntryKind.REPAYMENT,
            idempotency_key="unbalanced",
            business_date=DAY,
            currency="CNY",
            postings=postings,
        )
    assert caught.value.code == "ledger_unbalanced"
    assert not JournalEntry.objects.exists()


@pytest.mark.django_db
def test_single_line_entry_is_refused_as_unbalanced() -> None:
    with pytest.raises(LedgerUnbalanced):
        ledger_post(
            kind=EntryKind.REPAYMENT,
            idempotency_key="one-line",
            business_date=DAY,
            currency="CNY",
            postings=[Posting.dr(SETTLEMENT, d("100.00"))],
        )
    assert not JournalEntry.objects.exists()


@pytest.mark.parametrize(
    "amount",
    [100.0, 100, "100.00", Decimal("0.00"), Decimal("-5.00"), Decimal("1.001"), Decimal("NaN")],
    ids=["float", "int", "str", "zero", "negative", "three-places", "nan"],
)
def test_amounts_that_are_not_positive_cent_decimals_are_refused(amount: Any) -> None:
    with pytest.raises(LedgerError):
        Posting.dr(SETTLEMENT, amount)


def test_a_line_with_both_sides_is_refused() -> None:
    with pytest.raises(LedgerError, match="exactly one positive side"):
        Posting(SETTLEMENT, debit=d("1.00"), credit=d("1.00"))


def test_a_receivable_line_without_its_loan_is_refused() -> None:
    with pytest.raises(LedgerError, match="must name its loan"):
        Posting.dr(PRINCIPAL, d("1.00"))


def test_an_unknown_account_is_refused() -> None:
    with pytest.raises(LedgerError, match="Unknown account"):
        Posting.dr("petty_cash", d("1.00"))  # type: ignore[arg-type]


@pytest.mark.django_db
def test_mixed_currencies_are_refused_with_nothing_written(
    loan: Loan, django_assert_num_queries: Any
) -> None:
    usd = Posting(OVERPAY, credit=d("100.00"), currency="USD")
    with django_assert_num_queries(0):
        with pytest.raises(LedgerCurrencyMismatch) as caught:
            ledger_post(
                kind=EntryKind.REPAYMENT,
                idempotency_key="mixed",
                business_date=DAY,
                currency="CNY",
                postings=[Posting.dr(SETTLEMENT, d("100.00")), usd],
            )
        with pytest.raises(LedgerCurrencyMismatch):
            ledger_post(
                kind=EntryKind.REPAYMENT,
                idempotency_key="loan-in-cny",
                business_date=DAY,
                currency="USD",
                postings=[Posting.dr(SETTLEMENT, d("1.00")), Posting.cr(OVERPAY, d("1.00"))],
                loan=loan,
            )
    assert caught.value.code == "currency_mismatch"
    assert not JournalEntry.objects.exists()
    assert not JournalLine.objects.exists()


@pytest.mark.django_db
def test_a_non_iso_currency_is_refused() -> None:
    with pytest.raises(LedgerError, match="ISO 4217"):
        transfer("bad-currency", currency="XXY")
    assert not JournalEntry.objects.exists()


@pytest.mark.django_db
def test_second_post_with_same_key_returns_first_entry_and_writes_nothing(loan: Loan) -> None:
    first = disburse(loan)
    with CaptureQueriesContext(connection) as queries:
        again = disburse(loan)

    assert again.pk == first.pk
    assert JournalEntry.objects.count() == 1
    assert JournalLine.objects.count() == 2
    inserts = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 1  # the ON CONFLICT DO NOTHING that found the key taken
    assert "ON CONFLICT" in inserts[0].upper()


@pytest.mark.django_db
def test_reusing_a_key_for_a_different_entry_is_refused(loan: Loan) -> None:
    disburse(loan, key="disburse-once")
    with pytest.raises(LedgerKeyReused) as caught:
        disburse(loan, amount="7999.00", key="disburse-once")
    assert caught.value.code == "idempotency_key_reused"
    assert list(JournalLine.objects.values_list("debit", flat=True).order_by("-debit")) == [
        d("8000.00"),
        d("0.00"),
    ]


# Reversal -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_reversal_posts_the_mirror_entry_linked_to_the_original(loan: Loan) -> None:
    original = disburse(loan)
    reversal = ledger_reverse(
        entry=original, idempotency_key="rev:1", business_date=DAY, description="wrong amount"
    )

    assert reversal.kind == EntryKind.REVERSAL
    assert reversal.reversal_of_id == original.pk
    assert (reversal.loan_id, reversal.program_id) == (loan.pk, loan.program_id)
    lines = sorted(reversal.lines.values_list("account", "loan_id", "debit", "credit"))
    assert lines == [
        ("principal_receivable", loan.pk, d("0.00"), d("8000.00")),
        ("settlement", loan.pk, d("8000.00"), d("0.00")),
    ]
    assert account_balance(PRINCIPAL, loan=loan) == d("0.00")
    assert account_balance(SETTLEMENT) == d("0.00")


@pytest.mark.django_db
def test_reversal_is_idempotent_and_an_entry_is_reversed_only_once(loan: Loan) -> None:
    original = disburse(loan)
    first = ledger_reverse(
        entry=original, idempotency_key="rev:a", business_date=DAY, description=""
    )
    again = ledger_reverse(
        entry=original, idempotency_key="rev:a", business_date=DAY, description=""
    )
    assert again.pk == first.pk

    with pytest.raises(LedgerAlreadyReversed):
        ledger_reverse(entry=original, idempotency_key="rev:b", business_date=DAY, description="")
    assert JournalEntry.objects.filter(kind=EntryKind.REVERSAL).count() == 1


# Balances -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_loan_ledger_balances_come_from_one_grouped_query(
    line: CreditLine, django_assert_num_queries: Any
) -> None:
    loans = [make_loan(line, outstanding="8000.00") for _ in range(3)]
    for loan in loans:
        disburse(loan)
    ledger_post(
        kind=EntryKind.INTEREST_ACCRUAL,
        idempotency_key="accrue:1",
        business_date=DAY,
        currency="CNY",
        postings=[
            Posting.dr(INTEREST, d("1.20"), loan=loans[0]),
            Posting.cr(A.INTEREST_INCOME, d("1.20"), loan=loans[0]),
        ],
    )
    idle = make_loan(line, status=LoanStatus.APPROVED)

    with django_assert_num_queries(1):
        balances = loan_ledger_balances([loan.pk for loan in [*loans, idle]])

    assert balances[loans[0].pk].principal == d("8000.00")
    assert balances[loans[0].pk].interest == d("1.20")
    assert balances[loans[1].pk].interest == d("0.00")
    assert balances[idle.pk].principal == d("0.00")
    with django_assert_num_queries(1):
        assert set(loan_ledger_balances()) == {loan.pk for loan in loans}


amounts = st.decimals(min_value=d("0.01"), max_value=d("99999.99"), places=2)


@pytest.mark.django_db
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(debits=st.lists(amounts, min_size=1, max_size=5), cut=st.integers(0, 10**9))
def test_any_balanced_split_posts_and_keeps_the_book_balanced(
    debits: list[Decimal], cut: int
) -> None:
    total = sum(debits, d("0.00"))
    first = (total * (cut % 100) / 100).quantize(d("0.01"))
    credits = [c for c in (first, total - first) if c > 0]
    key = f"split:{JournalEntry.objects.count()}"
    ledger_post(
        kind=EntryKind.REPAYMENT,
        idempotency_key=key,
        business_date=DAY,
        currency="CNY",
        postings=[
            *(Posting.dr(SETTLEMENT, x) for x in debits),
            *(Posting.cr(OVERPAY, x) for x in credits),
        ],
    )
    assert book_check() == []


# Database guards (PostgreSQL) -----------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db
def test_journal_entries_and_lines_cannot_be_updated(loan: Loan) -> None:
    entry = disburse(loan)

    with pytest.raises(InternalError, match="Cannot update rows"), transaction.atomic():
        JournalEntry.objects.filter(pk=entry.pk).update(description="edited")
    with pytest.raises(InternalError, match="Cannot update rows"), transaction.atomic():
        JournalLine.objects.filter(entry=entry).update(debit=d("1.00"))

    assert JournalEntry.objects.get(pk=entry.pk).description == "disbursement settled"
    assert sorted(JournalLine.objects.filter(entry=entry).values_list("debit", flat=True)) == [
        d("0.00"),
        d("8000.00"),
    ]


@pytest.mark.postgres
@pytest.mark.django_db
def test_journal_entries_and_lines_cannot_be_deleted(loan: Loan) -> None:
    entry = disburse(loan)

    with pytest.raises(InternalError, match="Cannot delete rows"), transaction.atomic():
        JournalLine.objects.filter(entry=entry).delete()
    # The ORM would stop at on_delete=PROTECT first; raw SQL shows the trigger itself refuses.
    refused = pytest.raises(InternalError, match="Cannot delete rows")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM lending_journalentry WHERE id = %s", [entry.pk])

    assert JournalEntry.objects.filter(pk=entry.pk).exists()
    assert JournalLine.objects.filter(entry=entry).count() == 2


def _raw_entry(key: str) -> JournalEntry:
    return JournalEntry.objects.create(
        kind=EntryKind.REPAYMENT, idempotency_key=key, business_date=DAY, currency="CNY"
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_unbalanced_entry_written_with_the_orm_fails_at_commit() -> None:
    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
        entry = _raw_entry("raw-unbalanced")
        JournalLine.objects.create(
            entry=entry, account=SETTLEMENT, currency="CNY", debit=d("100.00")
        )
        JournalLine.objects.create(entry=entry, account=OVERPAY, currency="CNY", credit=d("90.00"))
        # The check is deferred: inside the transaction the entry is still there.
        assert JournalLine.objects.filter(entry=entry).count() == 2

    assert not JournalEntry.objects.exists()
    assert not JournalLine.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_entry_that_balances_only_after_its_last_line_commits() -> None:
    with transaction.atomic():
        entry = _raw_entry("raw-balanced")
        JournalLine.objects.create(entry=entry, account=SETTLEMENT, currency="CNY", debit=d("5.00"))
        JournalLine.objects.create(entry=entry, account=OVERPAY, currency="CNY", credit=d("2.00"))
        JournalLine.objects.create(entry=entry, account=OVERPAY, currency="CNY", credit=d("3.00"))

    assert JournalLine.objects.filter(entry__idempotency_key="raw-balanced").count() == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_posts_of_one_key_write_one_entry() -> None:
    """The first poster holds its transaction open; the second waits on the key, then gets it."""
    first_inserted, release = threading.Event(), threading.Event()
    results: dict[str, int] = {}
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with transaction.atomic():
                results["first"] = transfer("race").pk
                first_inserted.set()
                release.wait(10)
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)
        finally:
            connection.close()

    def second() -> None:
        try:
            first_inserted.wait(10)
            results["second"] = transfer("race").pk
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    threads[1].join(0.5)
    assert threads[1].is_alive()  # blocked on the first poster's uncommitted key
    release.set()
    for thread in threads:
        thread.join(10)

    assert errors == []
    assert results["first"] == results["second"]
    assert JournalEntry.objects.filter(idempotency_key="race").count() == 1
    assert JournalLine.objects.count() == 2


# book_check and ledger_check ------------------------------------------------------------------


@pytest.fixture
def consistent_book(line: CreditLine) -> dict[str, Any]:
    """A disbursed loan (principal in the ledger) and a loan in review holding a reservation."""
    active = make_loan(line, outstanding="8000.00")
    disburse(active)
    in_review = make_loan(
        line, status=LoanStatus.IN_REVIEW, principal="5000.00", reserved="5000.00"
    )
    headroom = {"outstanding_principal": d("8000.00"), "reserved": d("5000.00")}
    CreditLine.objects.filter(pk=line.pk).update(**headroom)
    Program.objects.filter(pk=line.program_id).update(**headroom)
    return {"line": line, "active": active, "in_review": in_review}


def run_check(*args: str) -> tuple[str, CommandError | None]:
    out = StringIO()
    try:
        call_command("ledger_check", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


@pytest.mark.django_db
def test_ledger_check_passes_on_a_consistent_book(consistent_book: dict[str, Any]) -> None:
    output, error = run_check()

    assert error is None
    assert "Checked 1 entries, 2 lines, 2 loans, 1 credit lines, 1 programs." in output
    assert "CNY  debit 8000.00  credit 8000.00" in output
    assert "The book agrees with the ledger." in output


@pytest.mark.django_db
def test_ledger_check_names_the_loan_whose_balance_disagrees(
    consistent_book: dict[str, Any],
) -> None:
    active: Loan = consistent_book["active"]
    Loan.objects.filter(pk=active.pk).update(outstanding_principal=d("7000.00"))

    output, error = run_check()

    assert error is not None
    assert f"loan_principal: loan {active.pk} ({active.reference})" in output
    assert "expected 8000.00  actual 7000.00" in output
    # The line and program still say 8000: they now disagree with the loans as well.
    assert "credit_line_outstanding" in output
    assert "program_outstanding" in output


@pytest.mark.django_db
def test_ledger_check_reports_a_credit_line_whose_reserved_disagrees(
    consistent_book: dict[str, Any],
) -> None:
    line: CreditLine = consistent_book["line"]
    CreditLine.objects.filter(pk=line.pk).update(reserved=d("4000.00"))

    output, error = run_check("--json")

    assert error is not None
    report = json.loads(output)
    assert report["ok"] is False
    assert report["differences"] == [
        {
            "check": "credit_line_reserved",
            "subject": f"credit_line {line.pk}",
            "expected": "5000.00",
            "actual": "4000.00",
        }
    ]


@pytest.mark.django_db
def test_ledger_check_json_on_a_consistent_book(consistent_book: dict[str, Any]) -> None:
    output, error = run_check("--json")

    assert error is None
    report = json.loads(output)
    assert report["ok"] is True
    assert (report["entries"], report["lines"], report["loans"]) == (1, 2, 2)
    assert report["totals"] == [{"currency": "CNY", "debit": "8000.00", "credit": "8000.00"}]
    assert report["differences"] == []


@pytest.mark.django_db
def test_book_check_finds_entries_written_around_ledger_post() -> None:
    # PostgreSQL checks entries only at commit: this savepoint is rolled back before that, so
    # the check can see a broken book on both backends.
    with transaction.atomic():
        lopsided = _raw_entry("raw-lopsided")
        JournalLine.objects.create(
            entry=lopsided, account=SETTLEMENT, currency="CNY", debit=d("10.00")
        )
        JournalLine.objects.create(
            entry=lopsided, account=OVERPAY, currency="CNY", credit=d("9.00")
        )
        lonely = _raw_entry("raw-lonely")
        stray = JournalLine.objects.create(
            entry=lonely, account=SETTLEMENT, currency="USD", debit=d("1.00")
        )
        found = {(x.check, x.subject): (x.expected, x.actual) for x in book_check()}
        transaction.set_rollback(True)

    assert found == {
        ("entry_unbalanced", f"entry {lopsided.pk} (raw-lopsided)"): (d("10.00"), d("9.00")),
        ("entry_lines", f"entry {lonely.pk} (raw-lonely)"): (2, 1),
        ("entry_unbalanced", f"entry {lonely.pk} (raw-lonely)"): (d("1.00"), d("0.00")),
        ("line_currency", f"line {stray.pk} of entry {lonely.pk}"): ("CNY", "USD"),
        ("currency_unbalanced", "CNY"): (d("10.00"), d("9.00")),
        ("currency_unbalanced", "USD"): (d("1.00"), d("0.00")),
    }
    assert not JournalEntry.objects.exists()


@pytest.mark.django_db
def test_book_check_flags_a_loan_with_balances_but_no_ledger_lines(line: CreditLine) -> None:
    ghost = make_loan(line, outstanding="100.00")
    CreditLine.objects.filter(pk=line.pk).update(outstanding_principal=d("100.00"))
    Program.objects.filter(pk=line.program_id).update(outstanding_principal=d("100.00"))
    Loan.objects.filter(pk=ghost.pk).update(accrued_interest=d("0.50"))

    found = [(x.check, x.expected, x.actual) for x in book_check()]

    assert found == [
        ("loan_principal", d("0.00"), d("100.00")),
        ("loan_interest", d("0.00"), d("0.50")),
    ]


@pytest.mark.django_db
def test_book_check_runs_a_fixed_number_of_queries_whatever_the_number_of_loans(
    line: CreditLine,
) -> None:
    def queries_for_check() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert book_check() == []
        return len(queries)

    for _ in range(2):
        disburse(make_loan(line, outstanding="8000.00"))
    total = d("16000.00")
    CreditLine.objects.filter(pk=line.pk).update(outstanding_principal=total)
    Program.objects.filter(pk=line.program_id).update(outstanding_principal=total)
    few = queries_for_check()

    for _ in range(6):
        disburse(make_loan(line, outstanding="8000.00"))
    total = d("64000.00")
    CreditLine.objects.filter(pk=line.pk).update(outstanding_principal=total)
    Program.objects.filter(pk=line.program_id).update(outstanding_principal=total)

    assert queries_for_check() == few
