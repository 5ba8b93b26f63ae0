"""The book check: does every figure we show agree with the ledger, over the whole book?

Each check is one grouped query that returns only the rows that disagree (the comparison runs in
the database, in ``HAVING``), so the check costs a few scans whatever the number of loans, and
its memory grows with the number of differences, not with the book:

1. every entry balances (debits = credits) and has at least two lines, and every line is in its
   entry's currency;
2. total debits equal total credits in each currency;
3. each loan's ``outstanding_principal`` equals its principal receivable in the ledger, and its
   ``accrued_interest`` / ``accrued_penalty`` equal its *active* ``Accrual`` rows of that kind
   plus its own receivable lines (repayments, write-offs and their reversals, which name the
   loan): daily accruals are posted to the general ledger as one total per program, date and
   kind, so the per-loan detail of accrued interest is the accrual sub-ledger;
3a. per currency, the interest (penalty) receivable lines that name no loan (the accrual
   entries: COB totals, catch-up, reversal and replay) add up to the active accrual rows of that
   kind, so the general ledger agrees with the sub-ledger in total; every accrual entry's
   receivable amount equals the rows that point at it; a principal receivable line, and an
   interest or penalty line outside an accrual entry, must name its loan;
4. each credit line's and program's ``reserved`` equals the ``reserved_amount`` of its loans
   that hold a reservation (``RESERVES_CREDIT``), and its ``outstanding_principal`` equals the
   sum of its loans' outstanding principal (reservations are not money, so this is not posted);
5. no journal line points at a missing entry;
6. margin accounts agree with their movements and, per program, with the ledger
   (``lending.services.book_check_margin``);
7.-9. goods holds, releases, guarantee claims and caps against their rows and the ledger
   (``lending.services.book_check_goods``).

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
from typing import Any

from django.db import connection, transaction
from django.db.models import (
    Count,
    Exists,
    F,
    FilteredRelation,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce, Round

from ..models import (
    RESERVES_CREDIT,
    AccountCode,
    Accrual,
    AccrualKind,
    CreditLine,
    EntryKind,
    JournalEntry,
    JournalLine,
    Loan,
    Program,
)
from ..selectors.ledger import MONEY, cents, money_sum, net_of
from .book_check_goods import goods_differences
from .ledger import LOAN_ACCOUNTS, ZERO


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
    ("loan_principal", "outstanding_principal", AccountCode.PRINCIPAL_RECEIVABLE, None),
    ("loan_interest", "accrued_interest", AccountCode.INTEREST_RECEIVABLE, AccrualKind.INTEREST),
    ("loan_penalty", "accrued_penalty", AccountCode.PENALTY_RECEIVABLE, AccrualKind.PENALTY),
)
ACCRUAL_ACCOUNTS = {
    AccrualKind.INTEREST: AccountCode.INTEREST_RECEIVABLE,
    AccrualKind.PENALTY: AccountCode.PENALTY_RECEIVABLE,
}
# Entries whose interest and penalty lines carry program totals and so name no loan.
ACCRUAL_ENTRY_KINDS = (EntryKind.INTEREST_ACCRUAL, EntryKind.PENALTY_ACCRUAL, EntryKind.REVERSAL)


def _active_accruals(kind: AccrualKind) -> Coalesce:
    """Per loan (correlated on ``pk``), the sum of its active accrual rows of ``kind``."""
    rows = (
        Accrual.objects.filter(loan=OuterRef("pk"), kind=kind, reversed_at__isnull=True)
        .order_by()
        .values("loan")
        .annotate(total=money_sum("amount"))
        .values("total")
    )
    return Coalesce(Subquery(rows, output_field=MONEY), Value(ZERO), output_field=MONEY)


def _loan_differences() -> Iterator[Difference]:
    """Loans whose balance columns disagree with their ledger lines and accruals (one query)."""
    receivable = FilteredRelation(
        "journal_lines", condition=Q(journal_lines__account__in=LOAN_ACCOUNTS)
    )
    loans = Loan.objects.order_by().annotate(receivable=receivable)
    mismatch = Q()
    for check, column, account, kind in LOAN_COLUMNS:
        source: Any = Coalesce(net_of(account, "receivable__"), Value(ZERO), output_field=MONEY)
        if kind is not None:
            source = source + _active_accruals(kind)
        loans = loans.annotate(**{f"{check}_ledger": source})
        loans = loans.annotate(**{f"{check}_diff": Round(F(column) - F(f"{check}_ledger"), 2)})
        mismatch |= ~Q(**{f"{check}_diff": 0})
    fields = [name for check, column, *_ in LOAN_COLUMNS for name in (column, f"{check}_ledger")]
    rows = loans.filter(mismatch).order_by("pk").values_list("pk", "reference", *fields)
    for pk, reference, *raw in rows.iterator():
        values = [cents(value) for value in raw]
        for index, (check, *_) in enumerate(LOAN_COLUMNS):
            actual, expected = values[2 * index], values[2 * index + 1]
            if actual != expected:
                yield Difference(check, f"loan {pk} ({reference})", expected, actual)
    yield from _unassigned_lines()


def _unassigned_lines() -> Iterator[Difference]:
    """Receivable lines without a loan where one is required."""
    stray = JournalLine.objects.filter(
        Q(account=AccountCode.PRINCIPAL_RECEIVABLE)
        | (Q(account__in=LOAN_ACCOUNTS) & ~Q(entry__kind__in=ACCRUAL_ENTRY_KINDS)),
        loan__isnull=True,
    )
    for pk, entry_id in stray.order_by("pk").values_list("pk", "entry_id").iterator():
        yield Difference(
            "receivable_without_loan", f"line {pk} of entry {entry_id}", "a loan", "none"
        )


def _accrual_differences() -> Iterator[Difference]:
    """The accrual entries (lines naming no loan) against the accrual sub-ledger."""
    for kind, account in ACCRUAL_ACCOUNTS.items():
        ledger = dict(
            JournalLine.objects.filter(account=account, loan__isnull=True)
            .order_by()
            .values("currency")
            .annotate(net=net_of(account))
            .values_list("currency", "net")
        )
        rows = dict(
            Accrual.objects.filter(kind=kind, reversed_at__isnull=True)
            .order_by()
            .values("loan__currency")
            .annotate(total=money_sum("amount"))
            .values_list("loan__currency", "total")
        )
        for currency in sorted(set(ledger) | set(rows)):
            in_ledger, in_rows = (
                cents(ledger.get(currency) or ZERO),
                cents(rows.get(currency) or ZERO),
            )
            if in_ledger != in_rows:
                yield Difference(f"{kind}_accruals_total", currency, in_rows, in_ledger)
    yield from _accrual_entry_differences()


def _accrual_entry_differences() -> Iterator[Difference]:
    """Accrual entries whose receivable amount is not the sum of the rows that point at them."""
    receivable = Q(lines__account__in=list(ACCRUAL_ACCOUNTS.values()))
    entries = (
        JournalEntry.objects.filter(
            kind__in=[EntryKind.INTEREST_ACCRUAL, EntryKind.PENALTY_ACCRUAL]
        )
        .order_by()
        .annotate(posted=money_sum("lines__debit", filter=receivable))
        .annotate(
            rows=Coalesce(
                Subquery(
                    Accrual.objects.filter(journal_entry=OuterRef("pk"))
                    .order_by()
                    .values("journal_entry")
                    .annotate(total=money_sum("amount"))
                    .values("total"),
                    output_field=MONEY,
                ),
                Value(ZERO),
                output_field=MONEY,
            )
        )
        .annotate(diff=Round(F("posted") - F("rows"), 2))
        .filter(~Q(diff=0))
        .order_by("pk")
        .values_list("pk", "idempotency_key", "rows", "posted")
    )
    for pk, key, rows, posted in entries.iterator():
        yield Difference("accrual_entry_rows", f"entry {pk} ({key})", cents(rows), cents(posted))


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
    from .book_check_margin import margin_differences  # it builds on this module's Difference

    return [
        *_entry_differences(),
        *_currency_differences(),
        *_loan_differences(),
        *_accrual_differences(),
        *_headroom_differences(CreditLine.objects.all(), "credit_line"),
        *_headroom_differences(Program.objects.all(), "program"),
        *_orphan_differences(),
        *(Difference(*row) for row in goods_differences()),
        *margin_differences(),
    ]
