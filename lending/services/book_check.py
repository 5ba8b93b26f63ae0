"""The book check: does every figure we show agree with the ledger, over the whole book?

Each check is one grouped query that returns only the rows that disagree (the comparison runs in
the database, in ``HAVING``), so the check costs a few scans whatever the number of loans, and
its memory grows with the number of differences, not with the book:

1. every entry balances (debits = credits) and has at least two lines, and every line is in its
   entry's currency;
2. total debits equal total credits in each currency;
3. each loan's ``outstanding_principal`` / ``accrued_interest`` / ``accrued_penalty`` equals its
   principal / interest / penalty receivable in the ledger, and no receivable line lacks a loan;
4. each credit line's and program's ``reserved`` equals the ``reserved_amount`` of its loans
   that hold a reservation (``RESERVES_CREDIT``), and its ``outstanding_principal`` equals the
   sum of its loans' outstanding principal (reservations are not money, so this is not posted);
5. no journal line points at a missing entry.

Differences are rounded to the cent before comparing, so SQLite (which sums NUMERIC columns as
floating point) and PostgreSQL agree. On PostgreSQL all the queries read one snapshot (a
``REPEATABLE READ, READ ONLY`` transaction), so a check running beside live posting compares
figures from the same instant: a service that posts an entry and moves a loan's balance in one
transaction is seen either wholly or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import (
    Count,
    Exists,
    F,
    FilteredRelation,
    OuterRef,
    Q,
    QuerySet,
    Value,
)
from django.db.models.functions import Coalesce, Round

from ..models import (
    RESERVES_CREDIT,
    AccountCode,
    CreditLine,
    JournalEntry,
    JournalLine,
    Loan,
    Program,
)
from .ledger import LOAN_ACCOUNTS, MONEY, ZERO, cents, money_sum, net_of


@dataclass(frozen=True, slots=True)
class Difference:
    """One disagreement: ``expected`` is the source of truth, ``actual`` what the row says."""

    check: str
    subject: str
    expected: Decimal | int | str
    actual: Decimal | int | str

    @property
    def what(self) -> str:
        return f"{self.check}: {self.subject}"

    def as_dict(self) -> dict[str, str]:
        return {
            "check": self.check,
            "subject": self.subject,
            "expected": str(self.expected),
            "actual": str(self.actual),
        }


@dataclass(frozen=True, slots=True)
class CurrencyTotal:
    currency: str
    debit: Decimal
    credit: Decimal


@dataclass(frozen=True, slots=True)
class BookSummary:
    entries: int
    lines: int
    loans: int
    credit_lines: int
    programs: int
    totals: tuple[CurrencyTotal, ...]


@contextmanager
def book_snapshot() -> Iterator[None]:
    """Run the enclosed reads in one read-only snapshot (PostgreSQL; a plain block elsewhere).

    Inside a transaction that is already open, the caller's transaction is the snapshot.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def currency_totals() -> list[CurrencyTotal]:
    rows = (
        JournalLine.objects.order_by()
        .values("currency")
        .annotate(dr=money_sum("debit"), cr=money_sum("credit"))
        .order_by("currency")
        .values_list("currency", "dr", "cr")
    )
    return [CurrencyTotal(currency, cents(dr), cents(cr)) for currency, dr, cr in rows]


def book_summary() -> BookSummary:
    return BookSummary(
        entries=JournalEntry.objects.count(),
        lines=JournalLine.objects.count(),
        loans=Loan.objects.count(),
        credit_lines=CreditLine.objects.count(),
        programs=Program.objects.count(),
        totals=tuple(currency_totals()),
    )


def _entry_differences() -> Iterator[Difference]:
    entries = (
        JournalEntry.objects.order_by()
        .annotate(
            n=Count("lines"),
            dr=money_sum("lines__debit"),
            cr=money_sum("lines__credit"),
        )
        .annotate(diff=Round(F("dr") - F("cr"), 2))
        .filter(Q(n__lt=2) | ~Q(diff=0))
        .order_by("pk")
        .values_list("pk", "idempotency_key", "n", "dr", "cr")
    )
    for pk, key, count, dr, cr in entries.iterator():
        debit, credit = cents(dr), cents(cr)
        subject = f"entry {pk} ({key})"
        if count < 2:
            yield Difference("entry_lines", subject, 2, count)
        if debit != credit:
            yield Difference("entry_unbalanced", subject, debit, credit)
    foreign = JournalLine.objects.exclude(currency=F("entry__currency")).order_by("pk")
    for pk, entry_id, currency, entry_currency in foreign.values_list(
        "pk", "entry_id", "currency", "entry__currency"
    ).iterator():
        yield Difference(
            "line_currency", f"line {pk} of entry {entry_id}", entry_currency, currency
        )


def _currency_differences() -> Iterator[Difference]:
    for total in currency_totals():
        if total.debit != total.credit:
            yield Difference("currency_unbalanced", total.currency, total.debit, total.credit)


LOAN_COLUMNS = (
    ("loan_principal", "outstanding_principal", AccountCode.PRINCIPAL_RECEIVABLE),
    ("loan_interest", "accrued_interest", AccountCode.INTEREST_RECEIVABLE),
    ("loan_penalty", "accrued_penalty", AccountCode.PENALTY_RECEIVABLE),
)


def _loan_differences() -> Iterator[Difference]:
    """Loans whose balance columns disagree with their receivable lines (one grouped query)."""
    receivable = FilteredRelation(
        "journal_lines", condition=Q(journal_lines__account__in=LOAN_ACCOUNTS)
    )
    loans = Loan.objects.order_by().annotate(receivable=receivable)
    mismatch = Q()
    for check, column, account in LOAN_COLUMNS:
        ledger = Coalesce(net_of(account, "receivable__"), Value(ZERO), output_field=MONEY)
        loans = loans.annotate(**{f"{check}_ledger": ledger})
        loans = loans.annotate(**{f"{check}_diff": Round(F(column) - F(f"{check}_ledger"), 2)})
        mismatch |= ~Q(**{f"{check}_diff": 0})
    fields = [name for check, column, _ in LOAN_COLUMNS for name in (column, f"{check}_ledger")]
    rows = loans.filter(mismatch).order_by("pk").values_list("pk", "reference", *fields)
    for pk, reference, *raw in rows.iterator():
        values = [cents(value) for value in raw]
        for index, (check, _, _) in enumerate(LOAN_COLUMNS):
            actual, expected = values[2 * index], values[2 * index + 1]
            if actual != expected:
                yield Difference(check, f"loan {pk} ({reference})", expected, actual)
    stray = JournalLine.objects.filter(account__in=LOAN_ACCOUNTS, loan__isnull=True)
    for pk, entry_id in stray.order_by("pk").values_list("pk", "entry_id").iterator():
        yield Difference(
            "receivable_without_loan", f"line {pk} of entry {entry_id}", "a loan", "none"
        )


def _headroom_differences(
    rows: QuerySet[CreditLine] | QuerySet[Program], label: str
) -> Iterator[Difference]:
    """Lines or programs whose ``reserved`` / ``outstanding_principal`` disagree with their loans."""
    holds = Q(loans__status__in=RESERVES_CREDIT)
    annotated = (
        rows.order_by()
        .annotate(
            loans_reserved=money_sum("loans__reserved_amount", filter=holds),
            loans_outstanding=money_sum("loans__outstanding_principal"),
        )
        .annotate(
            reserved_diff=Round(F("reserved") - F("loans_reserved"), 2),
            outstanding_diff=Round(F("outstanding_principal") - F("loans_outstanding"), 2),
        )
        .filter(~Q(reserved_diff=0) | ~Q(outstanding_diff=0))
        .order_by("pk")
        .values_list(
            "pk", "reserved", "loans_reserved", "outstanding_principal", "loans_outstanding"
        )
    )
    for pk, *raw in annotated.iterator():
        reserved, loans_reserved, outstanding, loans_outstanding = (cents(v) for v in raw)
        if reserved != loans_reserved:
            yield Difference(f"{label}_reserved", f"{label} {pk}", loans_reserved, reserved)
        if outstanding != loans_outstanding:
            yield Difference(
                f"{label}_outstanding", f"{label} {pk}", loans_outstanding, outstanding
            )


def _orphan_differences() -> Iterator[Difference]:
    has_entry = Exists(JournalEntry.objects.filter(pk=OuterRef("entry_id")))
    orphans = JournalLine.objects.filter(~has_entry).count()
    if orphans:
        yield Difference("orphan_lines", "journal lines without an entry", 0, orphans)


def book_check() -> list[Difference]:
    """Every difference between the ledger and the figures derived from it; empty when clean."""
    with book_snapshot():
        return _all_differences()


def _all_differences() -> list[Difference]:
    return [
        *_entry_differences(),
        *_currency_differences(),
        *_loan_differences(),
        *_headroom_differences(CreditLine.objects.all(), "credit_line"),
        *_headroom_differences(Program.objects.all(), "program"),
        *_orphan_differences(),
    ]
