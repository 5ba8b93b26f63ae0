"""camt.054 notifications and camt.053 statements: every booked entry stored once and applied.

Entries are keyed by the bank's entry reference (``AcctSvcrRef``, unique per bank): an entry
already stored (a camt.054 during the day, then the same entry on the camt.053 at night, or a
notification delivered twice) is only linked to the statement, never applied again. A new entry:

* a **debit** naming our payments' end-to-end ids is our payment: if its status report has not
  come yet (a late pain.002), the booking itself settles it; a debit we did not order is stored
  as ``unmatched_debit`` for the reconciliation to report;
* a **credit** is matched (``lending.selectors.credit_targets``) to a margin account (its
  ``MG-`` reference), a guarantee claim (its ``GC-`` reference) or a loan (the agent's
  repayment reference, else a loan reference in the remittance) and stored ``matched``; it is
  recorded after the commit (``matched``). A returned payment of ours
  (``RvslInd``/``RtrInf`` naming a settled disbursement or refund) is ``returned`` and undoes
  what the payment did (``returns``). A credit that matches nothing, is refused by the
  repayment service (a repaid loan, a future value date, another currency), or is a return we
  cannot act on, goes to the unapplied queue, booked Dr settlement / Cr unapplied credits (one ledger entry per file, account and
  booking date: a 100,000-entry statement is not 100,000 ledger entries).

A batched credit (several payments in one booking) is split into its payments (``batched``),
each matched as above on its own; if its payments do not add up to it, it goes to the unapplied
queue whole.

Each entry records the ledger entries that book it (``journal_keys``), for the reconciliation.
Statements (camt.053) also store their opening and closing booked balances (``BankStatement``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from lending.models import Bank, Disbursement
from lending.selectors.credit_targets import CreditTarget, targets_for_credits
from lending.selectors.programs import bank_settlement_account
from lending.selectors.repayment_refs import CreditRefs
from lending.services.bank_cash import unapplied_credit_post
from lending.services.repayments import REFERENCE_PATTERN
from scf import clock

from ...bank_models import (
    BankFile,
    BankFileKind,
    BankStatement,
    EntryStatus,
    OutboundPayment,
    PaymentKind,
    StatementEntry,
    UnappliedCredit,
)
from ..interface import TransferState
from ..iso20022 import AccountReport, CreditDebit, Entry, parse_camt053, parse_camt054
from .batched import batched_parts
from .bulk import rows_insert
from .errors import FileRefused
from .locks import payments_lock
from .returns import is_return, return_apply
from .unapplied import refund_journal_key

CHUNK = 5000
T = TypeVar("T")


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def settlement_account(bank: Bank) -> str:
    return bank_settlement_account(bank)


def repayment_reference(bank: Bank, entry_reference: str) -> str:
    """The repayment reference for a bank entry: unique per bank, as the pattern allows."""
    reference = f"{bank.code}:{entry_reference}"
    if REFERENCE_PATTERN.fullmatch(reference):
        return reference
    return f"{bank.code}:H{hashlib.sha256(entry_reference.encode()).hexdigest()[:40]}"


@dataclass
class _New:
    entry: Entry
    row: StatementEntry
    unapplied_reason: str = ""


def _row(file: BankFile, bank: Bank, report: AccountReport, entry: Entry) -> StatementEntry:
    details = entry.details
    return StatementEntry(
        bank=bank,
        bank_file=file,
        account=report.account,
        booking_date=entry.booking_date,
        value_date=entry.value_date or entry.booking_date,
        amount=entry.amount,
        currency=entry.currency,
        credit=entry.credit_debit is CreditDebit.CREDIT,
        reversal=entry.reversal,
        entry_reference=entry.account_servicer_reference,
        end_to_end_ids=[d.end_to_end_id for d in details if d.end_to_end_id],
        remittance=" ".join(d.remittance for d in details if d.remittance)[:500],
        creditor_reference=next(
            (d.creditor_reference for d in details if d.creditor_reference), ""
        )[:35],
        debtor_name=next((d.debtor_name for d in details if d.debtor_name), "")[:140],
        debtor_account=next((d.debtor_account for d in details if d.debtor_account), "")[:40],
        status=EntryStatus.UNAPPLIED,
    )


def _existing(bank: Bank, refs: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in chunks(refs):
        found.update(
            StatementEntry.objects.filter(bank=bank, entry_reference__in=chunk).values_list(
                "entry_reference", flat=True
            )
        )
    return found


def _payments(new: list[_New]) -> dict[str, OutboundPayment]:
    ids = [e2e for n in new if not n.row.credit for e2e in n.row.end_to_end_ids]
    found: dict[str, OutboundPayment] = {}
    for chunk in chunks(ids):
        found.update({p.end_to_end_id: p for p in payments_lock(chunk)})
    return found


def _payment_key(payment: OutboundPayment) -> str:
    if payment.kind == PaymentKind.REFUND:
        return refund_journal_key(payment)
    loan_id = Disbursement.objects.values_list("loan_id", flat=True).get(
        end_to_end_id=payment.end_to_end_id
    )
    return f"disburse:{loan_id}"


def _apply_debit(item: _New, payments: dict[str, OutboundPayment], at: dt.datetime) -> None:
    from .statuses import apply_final

    ours = [payments[e2e] for e2e in item.row.end_to_end_ids if e2e in payments]
    if not ours or len(ours) != len(item.row.end_to_end_ids):
        item.row.status = EntryStatus.UNMATCHED_DEBIT
        return
    for payment in ours:
        apply_final(payment, TransferState.SETTLED, "", at, item.row.entry_reference)
    item.row.status = EntryStatus.PAYMENT
    item.row.journal_keys = [_payment_key(p) for p in ours]


def _apply_credit(item: _New, target: CreditTarget) -> None:
    """A credit that names a loan, a margin account or a claim is ``matched``: it is recorded
    after the file's transaction commits (``matched``)."""
    if target.loan is None and target.margin_account is None and target.claim is None:
        item.unapplied_reason = "no loan matches the reference"
        return
    item.row.loan = target.loan
    item.row.margin_account = target.margin_account
    item.row.claim = target.claim
    item.row.status = EntryStatus.MATCHED


def _apply_return(item: _New, bank: Bank) -> None:
    """A payment of ours that came back (``returns``): ``returned``, or unapplied with why."""
    result = return_apply(item.entry, bank)
    item.row.loan = result.loan
    if result.returned:
        item.row.status = EntryStatus.RETURNED
        item.row.journal_keys = result.journal_keys
    else:
        item.unapplied_reason = result.reason


def _split(new: list[_New]) -> list[_New]:
    """The parts of the new batched credits (``batched``); one that cannot be split stays whole,
    for the unapplied queue with the reason."""
    parts: list[_New] = []
    for item in new:
        if not item.row.credit or len(item.entry.details) < 2 or is_return(item.entry):
            continue
        split = batched_parts(item.row, item.entry)
        if isinstance(split, str):
            item.unapplied_reason = split
        else:
            parts.extend(_New(item.entry, part) for part in split)
    return parts


def _apply_credits(credits: list[_New], bank: Bank) -> None:
    candidates = []
    for item in credits:
        if item.row.status == EntryStatus.SPLIT or item.unapplied_reason:
            continue
        if not item.row.detail_index and is_return(item.entry):
            _apply_return(item, bank)
            continue
        candidates.append(item)
    refs = [CreditRefs(i.row.creditor_reference, i.row.remittance) for i in candidates]
    for item, target in zip(candidates, targets_for_credits(refs, bank_id=bank.pk), strict=True):
        _apply_credit(item, target)


def _book_unapplied(file: BankFile, bank: Bank, unapplied: list[_New], index: int) -> None:
    by_day: dict[tuple[dt.date, str], Decimal] = defaultdict(Decimal)
    for item in unapplied:
        by_day[(item.row.booking_date or clock.now().date(), item.row.currency)] += item.row.amount
    keys = {}
    for (day, currency), total in by_day.items():
        entry = unapplied_credit_post(
            bank_code=bank.code,
            key=f"unapplied:{file.sha256[:20]}:{index}:{day:%Y%m%d}:{currency}",
            amount=total,
            currency=currency,
            business_date=day,
        )
        keys[(day, currency)] = entry.idempotency_key
    for item in unapplied:
        item.row.status = EntryStatus.UNAPPLIED
        item.row.journal_keys = [
            keys[(item.row.booking_date or clock.now().date(), item.row.currency)]
        ]


def _statement(file: BankFile, bank: Bank, report: AccountReport) -> BankStatement:
    opening, closing = report.opening_booked, report.closing_booked
    if opening is None or closing is None:  # the message layer refuses these already
        raise FileRefused("inconsistent", "a statement without opening or closing balance")
    day = closing.date
    if BankStatement.objects.filter(bank=bank, account=report.account, statement_date=day).exists():
        raise FileRefused("duplicate_statement", f"{report.account} already has a {day} statement")
    return BankStatement.objects.create(
        bank=bank,
        bank_file=file,
        account=report.account,
        currency=report.currency,
        statement_date=day,
        opening_balance=opening.signed_amount,
        closing_balance=closing.signed_amount,
    )


def _report_apply(file: BankFile, bank: Bank, report: AccountReport, index: int) -> int:
    statement = _statement(file, bank, report) if file.kind == BankFileKind.CAMT_053 else None
    booked = [e for e in report.entries if e.booked]
    existing = _existing(bank, [e.account_servicer_reference for e in booked])
    if statement is not None and existing:
        for chunk in chunks(sorted(existing)):
            StatementEntry.objects.filter(
                bank=bank, entry_reference__in=chunk, statement__isnull=True
            ).update(statement=statement)
    new = [
        _New(e, _row(file, bank, report, e))
        for e in booked
        if e.account_servicer_reference not in existing
    ]
    for item in new:
        item.row.statement = statement
    new.extend(_split(new))
    now = clock.now()
    payments = _payments(new)
    for item in new:
        if not item.row.credit:
            _apply_debit(item, payments, now)
    _apply_credits([i for i in new if i.row.credit], bank)
    unapplied = [i for i in new if i.row.credit and i.row.status == EntryStatus.UNAPPLIED]
    if unapplied:
        _book_unapplied(file, bank, unapplied, index)
    rows_insert(StatementEntry, [i.row for i in new])
    rows_insert(
        UnappliedCredit,
        [
            UnappliedCredit(
                entry=i.row,
                bank=bank,
                amount=i.row.amount,
                currency=i.row.currency,
                reason=i.unapplied_reason[:200],
                loan=i.row.loan,
                created_at=now,
            )
            for i in unapplied
        ],
    )
    return len(new)


def camt_apply(file: BankFile, content: bytes, bank: Bank, *, max_bytes: int) -> None:
    """Store and apply a camt.054 or camt.053 (inside the import's savepoint)."""
    parse = parse_camt053 if file.kind == BankFileKind.CAMT_053 else parse_camt054
    message = parse(content, max_bytes=max_bytes)
    file.message_id = message.message_id[:35]
    account = settlement_account(bank)
    total = Decimal("0.00")
    count = 0
    for index, report in enumerate(message.reports):
        if report.account != account:
            raise FileRefused(
                "unexpected_account", f"account {report.account} is not {bank.code}'s {account}"
            )
        _report_apply(file, bank, report, index)
        count += len(report.entries)
        total += sum((e.amount for e in report.entries), Decimal("0.00"))
    file.transactions = count
    file.control_sum = total
