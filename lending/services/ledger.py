"""Posting to the double-entry ledger and reversing entries (balances are read in
``lending.selectors.ledger``).

Design
------
* The chart of accounts is fixed in code (``AccountCode``); each account is debit-normal
  (assets, expenses) or credit-normal (liabilities, income), see ``ACCOUNT_KINDS``.
* A money movement is one ``JournalEntry`` with two or more ``JournalLine`` rows, each a debit
  *or* a credit, all in the entry's currency. Receivable lines (principal, interest, penalty)
  name their loan, so a loan's balances are the sums of its lines: the loan columns
  ``outstanding_principal``, ``accrued_interest`` and ``accrued_penalty`` are a cache of the
  ledger, and ``book_check`` proves they agree.
* ``ledger_post`` checks everything it can *before* it touches the database: Decimal amounts
  only (never a float), positive, at most two places, one side per line, debits equal credits,
  one currency. The database then enforces the same zero-sum rule on PostgreSQL with a deferred
  constraint trigger checked at commit, and refuses UPDATE and DELETE of journal rows.
* Every entry has an idempotency key. The entry row is written with
  ``INSERT ... ON CONFLICT (idempotency_key) DO NOTHING``: a second post of the same key (a retry,
  a re-run COB, a racing worker, which waits on the unique index until the first commits) writes
  nothing and gets the first entry back. Reusing a key for *different* postings is a bug and is
  refused (``idempotency_key_reused``), never silently ignored.
* Mistakes are corrected by ``ledger_reverse``: the mirror entry (debits and credits swapped),
  linked by ``reversal_of``; an entry is reversed at most once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from django.db import connection, transaction

from scf.errors import ApplicationError, Conflict
from scf.money import MAX_AMOUNT, MONEY_PLACES, is_iso_currency
from scf.sql import insert_rows

from ..locks import journal_entry_lock
from ..models import (
    AccountCode,
    EntryKind,
    JournalEntry,
    JournalLine,
    Loan,
    Program,
)

ZERO = Decimal("0.00")
# Sub-ledger accounts: every line on one of these names the loan it belongs to.
LOAN_ACCOUNTS = (
    AccountCode.PRINCIPAL_RECEIVABLE,
    AccountCode.INTEREST_RECEIVABLE,
    AccountCode.PENALTY_RECEIVABLE,
)


class LedgerError(ApplicationError):
    """A posting the ledger refuses (bad amount, account, currency or key)."""

    code = "ledger_invalid"
    status_code = 422


class LedgerUnbalanced(LedgerError):
    code = "ledger_unbalanced"


class LedgerCurrencyMismatch(LedgerError):
    code = "currency_mismatch"


class LedgerKeyReused(Conflict):
    code = "idempotency_key_reused"


class LedgerAlreadyReversed(Conflict):
    code = "ledger_already_reversed"


def _loan_id(loan: Loan | int | None) -> int | None:
    return loan.pk if isinstance(loan, Loan) else loan


def _check_amount(name: str, amount: object) -> None:
    if not isinstance(amount, Decimal):
        raise LedgerError(f"{name} must be a Decimal, not {type(amount).__name__}.")
    if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT:
        raise LedgerError(f"{name} must be a finite amount between 0 and {MAX_AMOUNT}.")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MONEY_PLACES:
        raise LedgerError(f"{name} has more than {MONEY_PLACES} decimal places: {amount}.")


@dataclass(frozen=True, slots=True)
class Posting:
    """One side of an entry: a positive Decimal debit *or* credit on an account.

    ``loan`` is required on the receivable accounts. ``currency``, when given, must be the
    entry's currency (a guard for callers that carry ``Money`` values around).
    """

    account: AccountCode
    debit: Decimal = ZERO
    credit: Decimal = ZERO
    loan: Loan | int | None = None
    currency: str | None = None

    def __post_init__(self) -> None:
        if self.account not in AccountCode.values:
            raise LedgerError(f"Unknown account {self.account!r}.")
        object.__setattr__(self, "account", AccountCode(self.account))
        _check_amount("debit", self.debit)
        _check_amount("credit", self.credit)
        if (self.debit > 0) == (self.credit > 0):
            raise LedgerError(f"A {self.account} line needs exactly one positive side.")
        if self.account in LOAN_ACCOUNTS and self.loan_id is None:
            raise LedgerError(f"A {self.account} line must name its loan.")

    @property
    def loan_id(self) -> int | None:
        return _loan_id(self.loan)

    @classmethod
    def dr(
        cls, account: AccountCode, amount: Decimal, *, loan: Loan | int | None = None
    ) -> Posting:
        return cls(account=account, debit=amount, loan=loan)

    @classmethod
    def cr(
        cls, account: AccountCode, amount: Decimal, *, loan: Loan | int | None = None
    ) -> Posting:
        return cls(account=account, credit=amount, loan=loan)

    def signature(self) -> tuple[str, int | None, Decimal, Decimal]:
        return (str(self.account), self.loan_id, self.debit, self.credit)


@dataclass(frozen=True, slots=True)
class _Entry:
    """A validated entry, ready to write."""

    kind: EntryKind
    idempotency_key: str
    business_date: dt.date
    currency: str
    postings: tuple[Posting, ...]
    loan_id: int | None
    program_id: int | None
    reversal_of_id: int | None
    description: str


def _check_currency(currency: str, postings: Sequence[Posting], *related: object) -> None:
    if not is_iso_currency(currency):
        raise LedgerError(f"Not an ISO 4217 currency: {currency!r}.")
    others: set[str] = {p.currency for p in postings if p.currency is not None}
    others |= {str(getattr(obj, "currency", "")) for obj in related if obj is not None}
    others.discard(currency)
    if others:
        raise LedgerCurrencyMismatch(
            f"Entry in {currency} cannot include {', '.join(sorted(others))}."
        )


def _check_balanced(postings: Sequence[Posting]) -> None:
    if len(postings) < 2:
        raise LedgerUnbalanced("An entry needs at least two lines.")
    debits = sum((p.debit for p in postings), ZERO)
    credits = sum((p.credit for p in postings), ZERO)
    if debits != credits:
        raise LedgerUnbalanced(f"Debits {debits} do not equal credits {credits}.")


def _validated(
    *,
    kind: str,
    idempotency_key: str,
    business_date: dt.date,
    currency: str,
    postings: Iterable[Posting],
    loan: Loan | None,
    program: Program | None,
    reversal_of_id: int | None,
    description: str,
) -> _Entry:
    lines = tuple(postings)
    if any(not isinstance(p, Posting) for p in lines):
        raise LedgerError("Postings must be Posting objects.")
    if kind not in EntryKind.values:
        raise LedgerError(f"Unknown entry kind {kind!r}.")
    if not idempotency_key or len(idempotency_key) > 128:
        raise LedgerError("An entry needs an idempotency key of 1 to 128 characters.")
    if not isinstance(business_date, dt.date) or isinstance(business_date, dt.datetime):
        raise LedgerError("business_date must be a date.")
    if len(description) > 200:
        raise LedgerError("description is longer than 200 characters.")
    _check_balanced(lines)
    _check_currency(currency, lines, loan, program)
    return _Entry(
        EntryKind(kind),
        idempotency_key,
        business_date,
        currency,
        lines,
        _loan_id(loan),
        program.pk if program is not None else None,
        reversal_of_id,
        description,
    )


def _entry_row(entry: _Entry) -> JournalEntry:
    """The entry's row, unsaved."""
    return JournalEntry(
        kind=entry.kind.value,
        idempotency_key=entry.idempotency_key,
        business_date=entry.business_date,
        currency=entry.currency,
        loan_id=entry.loan_id,
        program_id=entry.program_id,
        reversal_of_id=entry.reversal_of_id,
        description=entry.description,
    )


def _entry_lines(row: JournalEntry, entry: _Entry) -> list[JournalLine]:
    """The entry's lines, unsaved, pointing at its saved ``row``."""
    return [
        JournalLine(
            entry=row,
            account=p.account,
            loan_id=p.loan_id,
            currency=entry.currency,
            debit=p.debit,
            credit=p.credit,
        )
        for p in entry.postings
    ]


def _insert_entry(entry: _Entry) -> JournalEntry | None:
    """INSERT the entry row unless its key exists: the saved row, or None when the key was taken."""
    row = _entry_row(entry)
    fields = [f for f in JournalEntry._meta.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(f.pre_save(row, True), connection) for f in fields]
    qn = connection.ops.quote_name
    returned = insert_rows(
        JournalEntry._meta.db_table,
        [f.column for f in fields],
        [values],
        suffix=f"ON CONFLICT ({qn('idempotency_key')}) DO NOTHING RETURNING {qn('id')}",
    )
    if not returned:
        return None
    row.pk = int(returned[0][0])
    row._state.adding = False
    row._state.db = connection.alias
    return row


def _existing(entry: _Entry) -> JournalEntry:
    """The entry already posted under this key, if it records the same movement."""
    found = JournalEntry.objects.get(idempotency_key=entry.idempotency_key)
    stored = sorted(
        (line.account, line.loan_id, line.debit, line.credit) for line in found.lines.all()
    )
    same = (
        found.kind == entry.kind
        and found.currency == entry.currency
        and found.loan_id == entry.loan_id
        and found.program_id == entry.program_id
        and found.reversal_of_id == entry.reversal_of_id
        and stored == sorted(p.signature() for p in entry.postings)
    )
    if not same:
        raise LedgerKeyReused(
            f"Idempotency key {entry.idempotency_key!r} was already used for a different entry."
        )
    return found


def _write(entry: _Entry) -> JournalEntry:
    with transaction.atomic():
        row = _insert_entry(entry)
        if row is None:
            return _existing(entry)
        JournalLine.objects.bulk_create(_entry_lines(row, entry))
        return row


def ledger_post(
    *,
    kind: str,
    idempotency_key: str,
    business_date: dt.date,
    currency: str,
    postings: Iterable[Posting],
    loan: Loan | None = None,
    program: Program | None = None,
    description: str = "",
) -> JournalEntry:
    """Post one balanced entry, once per ``idempotency_key``.

    Everything is validated before the first query: ``LedgerError`` (float, zero, negative or
    over-precise amount, unknown account or kind, receivable line without a loan),
    ``LedgerUnbalanced``, ``LedgerCurrencyMismatch``. A repeat of an already posted key returns
    that entry and writes nothing; ``LedgerKeyReused`` if the repeat differs. Runs in (or as) a
    transaction; concurrent posts of one key are serialised by the unique index.
    """
    entry = _validated(
        kind=kind,
        idempotency_key=idempotency_key,
        business_date=business_date,
        currency=currency,
        postings=postings,
        loan=loan,
        program=program,
        reversal_of_id=None,
        description=description,
    )
    return _write(entry)


def ledger_reverse(
    *, entry: JournalEntry, idempotency_key: str, business_date: dt.date, description: str
) -> JournalEntry:
    """Post the mirror of ``entry`` (debits and credits swapped), linked by ``reversal_of``.

    The original is locked (``lending.locks``) so two reversals of it cannot race;
    ``LedgerAlreadyReversed`` if it was reversed under another key.
    """
    with transaction.atomic():
        original = journal_entry_lock(entry.pk)
        previous = JournalEntry.objects.filter(reversal_of=original).first()
        if previous is not None and previous.idempotency_key != idempotency_key:
            raise LedgerAlreadyReversed(f"Entry {original.pk} was already reversed.")
        mirrored = [
            Posting(AccountCode(line.account), line.credit, line.debit, line.loan_id)
            for line in original.lines.all()
        ]
        validated = _validated(
            kind=EntryKind.REVERSAL,
            idempotency_key=idempotency_key,
            business_date=business_date,
            currency=original.currency,
            postings=mirrored,
            loan=None,
            program=None,
            reversal_of_id=original.pk,
            description=description,
        )
        # A reversal belongs to the same loan and program as the entry it reverses.
        return _write(replace(validated, loan_id=original.loan_id, program_id=original.program_id))
