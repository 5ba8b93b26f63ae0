"""Many new ledger entries at once, each exactly as ``ledger_post`` would post it.

A bank file's matched credits are recorded a few thousand at a time
(``lending.services.repayment_batch``): each repayment keeps its own entry (``repay:<reference>``,
the same lines as one recorded through the API, so a later backdated payment can reverse and
re-post it alone), but the entries and their lines are written in two bulk statements. The
zero-sum trigger still checks every entry at commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from ..models import JournalEntry, JournalLine, Loan, Program
from .ledger import Posting, _entry_lines, _entry_row, _validated


@dataclass(frozen=True, slots=True)
class NewEntry:
    """One entry of ``ledger_post_new``: ``ledger_post``'s arguments."""

    kind: str
    idempotency_key: str
    business_date: dt.date
    currency: str
    postings: tuple[Posting, ...]
    loan: Loan | None = None
    program: Program | None = None
    description: str = ""


def ledger_post_new(entries: Sequence[NewEntry]) -> list[JournalEntry]:
    """Post many entries whose keys are all new, in a few statements (a batch of repayments).

    Each is validated as ``ledger_post`` validates it, all before the first query. A key already
    posted is an ``IntegrityError`` (the caller's transaction fails and writes nothing): callers
    hold the locks that make their keys new and fall back to ``ledger_post`` otherwise.
    """
    validated = [
        _validated(
            kind=e.kind,
            idempotency_key=e.idempotency_key,
            business_date=e.business_date,
            currency=e.currency,
            postings=e.postings,
            loan=e.loan,
            program=e.program,
            reversal_of_id=None,
            description=e.description,
        )
        for e in entries
    ]
    rows = JournalEntry.objects.bulk_create([_entry_row(e) for e in validated], batch_size=2000)
    JournalLine.objects.bulk_create(
        [line for row, e in zip(rows, validated, strict=True) for line in _entry_lines(row, e)],
        batch_size=2000,
    )
    return rows
