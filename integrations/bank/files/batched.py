"""A batched credit (one booking for several payments, several ``TxDtls``) split into its parts.

Each transaction detail with its own amount becomes a part: a ``StatementEntry`` row with the
entry's reference and ``detail_index`` 1..n, its own amount, references, remittance and payer,
matched like a single credit (``entries``); the entry's own row is ``split``. A part that
matches nothing is an unapplied credit of its own (by its amount). The parts' keys (reference +
index: ``key_reference``) make the repayment and the ledger entries of each part unique, so a
re-import applies nothing twice (the entry itself is stored once, by its ``AcctSvcrRef``).

The parts must add up to the entry, in its currency, each with an amount: otherwise nothing is
split and the whole entry goes to the unapplied queue with the reason.
"""

from __future__ import annotations

from decimal import Decimal

from ...bank_models import EntryStatus, StatementEntry
from ..iso20022 import Entry, TransactionDetail


def _refusal(entry: Entry) -> str:
    details = entry.details
    if any(d.amount is None for d in details):
        return "batched credit: a payment in it has no amount of its own"
    if any(d.currency not in ("", entry.currency) for d in details):
        return f"batched credit: a payment in it is not in {entry.currency}"
    total = sum((d.amount or Decimal("0.00") for d in details), Decimal("0.00"))
    if total != entry.amount:
        return f"batched credit: its payments add up to {total}, not the entry's {entry.amount}"
    if any(d.amount is not None and d.amount <= 0 for d in details):
        return "batched credit: a payment in it has no positive amount"
    return ""


def _part(row: StatementEntry, index: int, detail: TransactionDetail) -> StatementEntry:
    return StatementEntry(
        bank=row.bank,
        bank_file=row.bank_file,
        statement=row.statement,
        account=row.account,
        booking_date=row.booking_date,
        value_date=row.value_date,
        amount=detail.amount,
        currency=row.currency,
        credit=True,
        reversal=False,
        entry_reference=row.entry_reference,
        detail_index=index,
        end_to_end_ids=[detail.end_to_end_id] if detail.end_to_end_id else [],
        remittance=detail.remittance[:500],
        creditor_reference=detail.creditor_reference[:35],
        debtor_name=detail.debtor_name[:140],
        debtor_account=detail.debtor_account[:40],
        status=EntryStatus.UNAPPLIED,
    )


def batched_parts(row: StatementEntry, entry: Entry) -> list[StatementEntry] | str:
    """The parts of a batched credit (the entry's row becomes ``split``), else why it cannot be
    split (the row is left as it is)."""
    refusal = _refusal(entry)
    if refusal:
        return refusal
    row.status = EntryStatus.SPLIT
    return [_part(row, index, d) for index, d in enumerate(entry.details, start=1)]
