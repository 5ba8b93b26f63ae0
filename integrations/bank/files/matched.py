"""Matched credits are recorded after the file's import: repayments of loans (a batch at a time),
margin deposits (``MG-`` references) and guarantee claim payments (``GC-``, one by one).

The import stores a credit that names a loan, a margin account or a claim as ``matched``
(durably, with the file); this records it (value-dated by the entry, reference
``<bank>:<AcctSvcrRef>``, with ``/<n>`` for the n-th payment of a split batched credit: applied
once) and marks it ``applied`` with the ledger entry that books it.

**Batches.** Up to ``BATCH`` matched credits of the bank, oldest first, are locked (``SKIP
LOCKED``: a second worker takes the next ones) and recorded together by
``lending.services.repayment_batch.repayments_record_batch`` in one transaction: the same
rows as the per-credit service, written set-based. The credits it declines (a backdated value
date, a repaid loan, a loan under a claim, another currency, a reference used before...) are
then recorded one by one through the repayment service (``matched_credit_apply``), each in its
own transaction as before; one the service refuses goes to the unapplied queue instead, booked
to the suspense account. A batch that fails as a whole (another writer took one of its
references in the meantime) is recorded one by one too.

Why not inside the file's transaction: every repayment locks its program's row (and its line's).
Thousands of repayments in one transaction, each in its own savepoint, lock the same program row
from thousands of subtransactions; PostgreSQL then keeps a multixact of all of them on that row,
rebuilt at every new lock, and the commit's deferred checks walk it: the cost grows with the
square of the count (measured in ``bench.bankfiles_import``). A batch takes no savepoint per
credit: its transaction updates each program row once. A worker that dies in between leaves
``matched`` rows, which the next import cycle applies (``matched_credits_apply`` runs after
every bank's files); two workers take different rows (``SKIP LOCKED``) and a row is applied
once (its status is checked under its lock, and the repayment reference is unique).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction

from lending.models import Bank, MarginSource, RepaymentSource
from lending.services.bank_cash import unapplied_credit_post
from lending.services.claim_actions import claim_payment_key, claim_payment_record
from lending.services.ledger import LedgerKeyReused
from lending.services.margin import margin_deposit
from lending.services.repayment_batch import BatchResult, Credit, repayments_record_batch
from lending.services.repayments import repayment_record_outcome
from scf import clock
from scf.errors import ApplicationError
from scf.money import Money
from scf.sql import rows_update

from ...bank_models import EntryStatus, StatementEntry, UnappliedCredit
from .entries import repayment_reference
from .locks import matched_entries_lock, matched_entry_lock

ACTOR = "integration:bank-files"
BATCH = 2000  # credits recorded in one transaction: a few seconds of locks at most


@dataclass
class MatchedResult:
    applied: int = 0
    unapplied: int = 0
    busy: int = 0


def _to_unapplied(row: StatementEntry, reason: str) -> None:
    day = row.booking_date or clock.business_date(settings.TIME_ZONE)
    entry = unapplied_credit_post(
        bank_code=row.bank.code,
        key=f"unapplied:{row.key_reference}",
        amount=row.amount,
        currency=row.currency,
        business_date=day,
    )
    row.status = EntryStatus.UNAPPLIED
    row.journal_keys = [entry.idempotency_key]
    row.save(update_fields=["status", "journal_keys"])
    UnappliedCredit.objects.create(
        entry=row,
        bank=row.bank,
        amount=row.amount,
        currency=row.currency,
        reason=reason[:200],
        loan=row.loan,
        created_at=clock.now(),
    )


def _record(row: StatementEntry) -> list[str]:
    """Record a matched credit through its target's service (margin deposit, claim payment or
    repayment), under the reference ``<bank>:<entry key>``; the keys of its ledger entries."""
    reference = repayment_reference(row.bank, row.key_reference)
    if row.margin_account is not None:
        account = row.margin_account
        movement, _ = margin_deposit(
            account=account,
            amount=row.amount,
            value_date=row.value_date or clock.business_date(account.program.time_zone),
            reference=reference,
            source=MarginSource.BANK_STATEMENT,
            actor=ACTOR,
            currency=row.currency,
        )
        posted = movement.journal_entry
        return [posted.idempotency_key] if posted is not None else []
    if row.claim is not None:
        claim_payment_record(
            claim_id=row.claim.pk,
            amount=row.amount,
            value_date=row.value_date or clock.business_date(settings.TIME_ZONE),
            reference=reference,
            actor=ACTOR,
        )
        return [claim_payment_key(reference)]
    loan = row.loan
    assert loan is not None  # matched: one of the three
    repayment, _ = repayment_record_outcome(
        loan=loan,
        amount=Money(row.amount, row.currency),
        value_date=row.value_date or clock.business_date(loan.program.time_zone),
        reference=reference,
        source=RepaymentSource.BANK_STATEMENT,
        actor=ACTOR,
    )
    posted = repayment.journal_entry
    return [posted.idempotency_key] if posted is not None else []


@transaction.atomic
def matched_credit_apply(*, entry_id: int) -> str:
    """Record one matched credit: ``applied``, ``unapplied``, or ``busy`` (another worker has
    it, or it is done)."""
    row = matched_entry_lock(entry_id)
    if row is None or (row.loan is None and row.margin_account is None and row.claim is None):
        return "busy"
    try:
        with transaction.atomic():
            keys = _record(row)
    except ApplicationError as exc:
        _to_unapplied(row, f"{exc.code}: {exc}")
        return "unapplied"
    row.status = EntryStatus.APPLIED
    row.journal_keys = keys
    row.save(update_fields=["status", "journal_keys"])
    return "applied"


def _credit(row: StatementEntry, bank: Bank) -> Credit:
    return Credit(
        key=row.pk,
        # A margin deposit or claim payment names no loan: 0 matches none, so the batch
        # declines it and it is recorded one by one (``matched_credit_apply``).
        loan_id=row.loan_id or 0,
        amount=row.amount,
        currency=row.currency,
        value_date=row.value_date,
        reference=repayment_reference(bank, row.key_reference),
    )


def _batch_apply(bank: Bank, rows: list[StatementEntry]) -> BatchResult:
    """Record a locked batch; mark what it recorded ``applied``."""
    result = repayments_record_batch(
        [_credit(row, bank) for row in rows], source=RepaymentSource.BANK_STATEMENT, actor=ACTOR
    )
    applied = [row for row in rows if row.pk in result.recorded]
    for row in applied:
        row.status = EntryStatus.APPLIED
        row.journal_keys = [result.recorded[row.pk]]
    rows_update(applied, ["status", "journal_keys"])
    return result


def matched_credits_apply(*, bank: Bank, batch: int = BATCH) -> MatchedResult:
    """Every matched credit of the bank, oldest first, ``batch`` at a time."""
    result = MatchedResult()
    after = 0
    while True:
        declined: list[int]
        try:
            with transaction.atomic():
                rows = matched_entries_lock(bank, after=after, limit=batch)
                if not rows:
                    break
                after = rows[-1].pk
                recorded = _batch_apply(bank, rows)
            result.applied += len(recorded.recorded)
            declined = recorded.declined
        except (IntegrityError, LedgerKeyReused):
            declined = [row.pk for row in rows]  # rolled back: one by one, as before
        for entry_id in declined:
            outcome = matched_credit_apply(entry_id=entry_id)
            setattr(result, outcome, getattr(result, outcome) + 1)
    return result
