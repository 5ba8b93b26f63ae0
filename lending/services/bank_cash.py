"""Bank cash that is not (yet) a loan's: credits the bank booked that no loan claimed.

Such a credit is still money in the settlement account, so the book takes it at once (Dr
settlement / Cr unapplied credits, a liability) and the bank statement and the ledger keep
agreeing. Operations later apply it to a loan (Dr unapplied / Cr settlement, then the repayment
posts Dr settlement as any repayment does, both on the repayment's value date so the settlement
account nets to the credit) or refund it (Dr unapplied / Cr settlement when the refund settles).

Keys name the bank (``bank:<code>:...``), because these entries belong to no program: the
reconciliation finds a bank's settlement movements by program or by that prefix.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from ..models import AccountCode, EntryKind, JournalEntry
from .ledger import Posting, ledger_post


def bank_key_prefix(bank_code: str) -> str:
    return f"bank:{bank_code}:"


def unapplied_credit_post(
    *, bank_code: str, key: str, amount: Decimal, currency: str, business_date: dt.date
) -> JournalEntry:
    """Money received that no loan claims: Dr settlement / Cr unapplied credits, once per key."""
    return ledger_post(
        kind=EntryKind.UNAPPLIED_CREDIT,
        idempotency_key=f"{bank_key_prefix(bank_code)}{key}"[:128],
        business_date=business_date,
        currency=currency,
        postings=[
            Posting.dr(AccountCode.SETTLEMENT, amount),
            Posting.cr(AccountCode.UNAPPLIED_CREDITS, amount),
        ],
        description=f"unapplied credit {key}"[:200],
    )


def unapplied_transfer_post(
    *, bank_code: str, key: str, amount: Decimal, currency: str, business_date: dt.date
) -> JournalEntry:
    """An unapplied credit leaves the suspense account (applied or refunded): Dr unapplied /
    Cr settlement, once per key."""
    return ledger_post(
        kind=EntryKind.UNAPPLIED_TRANSFER,
        idempotency_key=f"{bank_key_prefix(bank_code)}{key}"[:128],
        business_date=business_date,
        currency=currency,
        postings=[
            Posting.dr(AccountCode.UNAPPLIED_CREDITS, amount),
            Posting.cr(AccountCode.SETTLEMENT, amount),
        ],
        description=f"unapplied credit out {key}"[:200],
    )
