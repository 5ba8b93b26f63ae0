"""Daily reconciliation of a bank account's statement against the book.

For one bank account and statement date:

* **balances**: the statement's opening and closing booked balances (``OPBD``/``CLBD``) against
  the ledger's settlement account for that bank (postings of its programs, and its own
  ``bank:<code>:`` entries: unapplied credits). The book does not hold the money that was in
  the account before the platform used it, so the first statement of an account anchors the two:
  ``anchor = first OPBD - book balance before that day``; every later day must then agree
  exactly, on both ends;
* **every statement entry against a ledger posting**: each entry records the ledger entries
  that book it (``journal_keys``). Entries and keys are grouped where they share a key (a batched
  debit pays several loans; one unapplied-credit entry books many credits); in each group the
  entries' signed amounts must equal the keys' settlement movement. A batched credit that was
  split is booked by its parts' keys, and compared whole. An entry with no key is a
  break (``entry_not_in_book``: a debit we did not order, a fee);
* **and vice versa**: postings of the day on the settlement account that no entry names. Moves
  inside the book (an unapplied credit applied to a loan, a repayment re-allocated) net to
  zero and are not breaks; if the unnamed postings do not net to zero, each is reported
  (``posting_not_in_statement``: e.g. a repayment recorded by hand that the bank never booked).

A day without a statement is itself a break. The run and its breaks are stored
(``ReconciliationRun``, ``ReconciliationBreak``); ``python manage.py reconcile --date`` and the
operations page show them; ``scf_reconciliation_breaks`` exports the latest run's count.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.db.models.functions import Coalesce

from lending.models import AccountCode, Bank, JournalLine
from lending.services.bank_cash import bank_key_prefix
from scf import clock

from ...bank_models import (
    BankStatement,
    BreakKind,
    EntryStatus,
    ReconciliationBreak,
    ReconciliationRun,
    StatementEntry,
)
from . import file_bank_codes
from .entries import settlement_account

ZERO = Decimal("0.00")


def _settlement(bank: Bank) -> Q:
    return Q(account=AccountCode.SETTLEMENT) & (
        Q(entry__program__bank=bank)
        | Q(entry__idempotency_key__startswith=bank_key_prefix(bank.code))
    )


def _net(lines: object) -> Decimal:
    total = lines.aggregate(  # type: ignore[attr-defined]
        d=Coalesce(Sum("debit"), ZERO), c=Coalesce(Sum("credit"), ZERO)
    )
    return Decimal(total["d"]) - Decimal(total["c"])


def book_balance(bank: Bank, through: dt.date) -> Decimal:
    """The bank's settlement balance in the book at the end of ``through``."""
    return _net(JournalLine.objects.filter(_settlement(bank), entry__business_date__lte=through))


def _movements(bank: Bank, keys: set[str] | None, day: dt.date | None) -> dict[str, Decimal]:
    lines = JournalLine.objects.filter(_settlement(bank))
    if keys is not None:
        lines = lines.filter(entry__idempotency_key__in=sorted(keys))
    if day is not None:
        lines = lines.filter(entry__business_date=day)
    rows = lines.values("entry__idempotency_key").annotate(
        d=Coalesce(Sum("debit"), ZERO), c=Coalesce(Sum("credit"), ZERO)
    )
    return {r["entry__idempotency_key"]: Decimal(r["d"]) - Decimal(r["c"]) for r in rows}


def _anchor(bank: Bank, account: str) -> Decimal | None:
    first = BankStatement.objects.filter(bank=bank, account=account).order_by("statement_date")
    statement = first.first()
    if statement is None:
        return None
    before = statement.statement_date - dt.timedelta(days=1)
    return statement.opening_balance - book_balance(bank, before)


def _groups(entries: list[StatementEntry]) -> list[tuple[list[StatementEntry], set[str]]]:
    """Entries joined by shared ledger keys (union-find over keys)."""
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for entry in entries:
        keys = entry.journal_keys
        for key in keys[1:]:
            parent[find(key)] = find(keys[0])
    grouped: dict[str, tuple[list[StatementEntry], set[str]]] = {}
    for entry in entries:
        root = find(entry.journal_keys[0])
        members, keys = grouped.setdefault(root, ([], set()))
        members.append(entry)
        keys.update(entry.journal_keys)
    return list(grouped.values())


def _whole(rows: list[StatementEntry]) -> list[StatementEntry]:
    """The statement's entries, a split batched credit booked by its parts' keys (all of them:
    a part not booked yet leaves the entry unbooked)."""
    parts: dict[str, list[list[str]]] = {}
    for row in rows:
        if row.detail_index:
            parts.setdefault(row.entry_reference, []).append(row.journal_keys)
    entries = [row for row in rows if not row.detail_index]
    for entry in entries:
        if entry.status == EntryStatus.SPLIT:
            keys = parts.get(entry.entry_reference, [])
            booked = bool(keys) and all(keys)
            entry.journal_keys = sorted({k for ks in keys for k in ks}) if booked else []
    return entries


def _entry_breaks(bank: Bank, entries: list[StatementEntry]) -> list[ReconciliationBreak]:
    breaks = [
        ReconciliationBreak(
            kind=BreakKind.ENTRY_NOT_IN_BOOK,
            reference=e.entry_reference,
            statement_amount=e.signed_amount,
            detail=f"{e.get_status_display()} {' '.join(e.end_to_end_ids)}"[:300],
        )
        for e in entries
        if not e.journal_keys
    ]
    linked = [e for e in entries if e.journal_keys]
    moved = _movements(bank, {k for e in linked for k in e.journal_keys}, None)
    for members, keys in _groups(linked):
        stated = sum((e.signed_amount for e in members), ZERO)
        booked = sum((moved.get(k, ZERO) for k in keys), ZERO)
        if stated != booked:
            breaks.append(
                ReconciliationBreak(
                    kind=BreakKind.ENTRY_AMOUNT,
                    reference=",".join(sorted(e.entry_reference for e in members))[:128],
                    statement_amount=stated,
                    book_amount=booked,
                    detail=",".join(sorted(keys))[:300],
                )
            )
    return breaks


def _posting_breaks(bank: Bank, day: dt.date) -> list[ReconciliationBreak]:
    named = {
        key
        for keys in StatementEntry.objects.filter(bank=bank).values_list("journal_keys", flat=True)
        for key in keys
    }
    unnamed = {k: v for k, v in _movements(bank, None, day).items() if k not in named and v}
    if sum(unnamed.values(), ZERO) == 0:
        return []
    return [
        ReconciliationBreak(
            kind=BreakKind.POSTING_NOT_IN_STATEMENT, reference=key[:128], book_amount=amount
        )
        for key, amount in sorted(unnamed.items())
    ]


def _balance_breaks(
    statement: BankStatement, book_opening: Decimal, book_closing: Decimal
) -> list[ReconciliationBreak]:
    breaks = []
    for kind, stated, booked in (
        (BreakKind.OPENING_BALANCE, statement.opening_balance, book_opening),
        (BreakKind.CLOSING_BALANCE, statement.closing_balance, book_closing),
    ):
        if stated != booked:
            breaks.append(
                ReconciliationBreak(
                    kind=kind,
                    reference=statement.account,
                    statement_amount=stated,
                    book_amount=booked,
                )
            )
    return breaks


@transaction.atomic
def reconcile(*, bank: Bank, account: str, day: dt.date) -> ReconciliationRun:
    """Reconcile one account and day (see the module docstring); the stored run."""
    statement = BankStatement.objects.filter(bank=bank, account=account, statement_date=day).first()
    anchor = _anchor(bank, account) or ZERO
    book_opening = book_balance(bank, day - dt.timedelta(days=1)) + anchor
    book_closing = book_balance(bank, day) + anchor
    entries = _whole(
        list(StatementEntry.objects.filter(bank=bank, account=account, booking_date=day))
    )
    breaks = _entry_breaks(bank, entries) + _posting_breaks(bank, day)
    if statement is None:
        breaks.insert(0, ReconciliationBreak(kind=BreakKind.NO_STATEMENT, reference=account))
    else:
        breaks = _balance_breaks(statement, book_opening, book_closing) + breaks
    run = ReconciliationRun.objects.create(
        bank=bank,
        account=account,
        statement_date=day,
        statement_opening=statement.opening_balance if statement else None,
        statement_closing=statement.closing_balance if statement else None,
        book_opening=book_opening,
        book_closing=book_closing,
        entries=len(entries),
        breaks_count=len(breaks),
        ran_at=clock.now(),
    )
    for item in breaks:
        item.run = run
    ReconciliationBreak.objects.bulk_create(breaks)
    return run


def reconcile_date(day: dt.date | None = None) -> list[ReconciliationRun]:
    """Reconcile every file-rail bank's settlement account for ``day`` (default: yesterday)."""
    day = day or clock.business_date(settings.TIME_ZONE) - dt.timedelta(days=1)
    banks = Bank.objects.filter(code__in=file_bank_codes()).order_by("code")
    return [reconcile(bank=bank, account=settlement_account(bank), day=day) for bank in banks]
