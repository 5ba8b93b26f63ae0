"""Margin accounts: deposits (operations or a bank credit quoting the margin reference) and
withdrawals of free margin (a payment through the bank adapter, maker-checker above a threshold).

* **Deposits** are exactly once per reference: a ``deposit`` movement's reference is unique, so a
  bank credit imported twice, or an operations call repeated, lands once; a repeat that differs
  (another account, amount or date) is refused (``margin_reference_reused``). Each posts
  Dr settlement / Cr margin_free.
* **Withdrawals** take the amount out of ``free`` at once (a conditional decrement under the
  account's row lock; the CHECK ``free >= 0`` backs it up), so the same money cannot be committed
  to a financing meanwhile. Above the terms' ``margin_withdraw_approval_threshold`` a second
  person approves it first; a rejection or a bank refusal gives the amount back to ``free``
  (``withdraw_reversed``). The ledger entry Dr margin_free / Cr settlement is posted when the
  bank settles the payment, so until then the ledger's margin_free includes the withdrawals in
  flight (``ledger_check`` counts them).

The account row is the lock; finance takes it after the credit line and program (see
``lending.services.margin_finance``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F

from orders.models import Agent, Role, User
from scf import clock
from scf.enqueue import enqueue_on_commit
from scf.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

from ..locks import margin_account_lock, margin_withdrawal_lock
from ..models import (
    AccountCode,
    EntryKind,
    MarginAccount,
    MarginMovement,
    MarginMovementKind,
    MarginSource,
    MarginWithdrawal,
    Program,
    TripartiteTerms,
    WithdrawalStatus,
)
from .audit import audit_record
from .ledger import Posting, ledger_post
from .repayments import REFERENCE_PATTERN, RepaymentInvalid

IN_FLIGHT = (WithdrawalStatus.AWAITING_APPROVAL, WithdrawalStatus.PENDING, WithdrawalStatus.SENT)
MAX_AMOUNT = Decimal(10) ** 15


def business_date(program: Program) -> dt.date:
    return clock.business_date(program.time_zone)


class MarginReferenceReused(Conflict):
    code = "margin_reference_reused"


class InsufficientFreeMargin(Conflict):
    code = "insufficient_free_margin"


class WithdrawalClosed(Conflict):
    code = "withdrawal_closed"


class MakerCheckerSameUser(Conflict):
    code = "maker_checker_same_user"


def margin_reference(program_id: int, agent_id: int) -> str:
    """The reference an agent quotes on a bank transfer to lodge margin under a program."""
    return f"MG-{program_id}-{agent_id}"


def margin_account_get_or_create(*, program: Program, agent: Agent) -> MarginAccount:
    """The agent's margin account under the program (created empty on first use)."""
    found = MarginAccount.objects.filter(program=program, agent=agent).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return MarginAccount.objects.create(
                program=program,
                agent=agent,
                currency=program.currency,
                reference=margin_reference(program.pk, agent.pk),
            )
    except IntegrityError:  # created meanwhile by a concurrent call
        return MarginAccount.objects.get(program=program, agent=agent)


def clean_amount(value: Any, currency: str, expected: str) -> Decimal:
    problem = ""
    if currency != expected:
        problem = f"Must be in {expected}, the program's currency."
    elif not isinstance(value, Decimal) or not value.is_finite():
        problem = "Must be a finite decimal amount."
    elif value <= 0:
        problem = "Must be greater than zero."
    elif value > MAX_AMOUNT:
        problem = f"Must be at most {MAX_AMOUNT:,}."
    elif value != value.quantize(Decimal("0.01")):
        problem = "At most two decimal places."
    if problem:
        raise ValidationFailed(f"Invalid amount: {problem}", fields={"amount": [problem]})
    return value.quantize(Decimal("0.01"))


def _clean_reference(reference: Any) -> str:
    cleaned = reference.strip() if isinstance(reference, str) else ""
    if not REFERENCE_PATTERN.fullmatch(cleaned):
        message = "1 to 64 characters: letters, digits and . _ : / - (starting with one of the first two)."
        raise RepaymentInvalid(f"Invalid reference. {message}", fields={"reference": [message]})
    return cleaned


def _movement(account: MarginAccount, kind: str, amount: Decimal, **fields: Any) -> MarginMovement:
    fields.setdefault("value_date", business_date(account.program))
    return MarginMovement.objects.create(
        account=account, kind=kind, amount=amount, created_at=clock.now(), **fields
    )


def _send_when_committed(withdrawal: MarginWithdrawal) -> None:
    if withdrawal.status == WithdrawalStatus.PENDING:
        enqueue_on_commit(settings.MARGIN_WITHDRAWAL_TASK, [withdrawal.pk])


def _lock(account_id: int) -> MarginAccount:
    return margin_account_lock(account_id)


@transaction.atomic
def margin_deposit(
    *,
    account: MarginAccount,
    amount: Decimal,
    value_date: dt.date,
    reference: str,
    source: str = MarginSource.API,
    actor: Any = None,
    currency: str | None = None,
) -> tuple[MarginMovement, bool]:
    """Lodge margin: + free, Dr settlement / Cr margin_free. Returns ``(movement, created)``.

    Raises ``ValidationFailed`` (amount, currency, reference, a value date in the future) and
    ``margin_reference_reused``.
    """
    account = _lock(account.pk)
    amount = clean_amount(amount, currency or account.currency, account.currency)
    reference = _clean_reference(reference)
    today = business_date(account.program)
    if not isinstance(value_date, dt.date) or value_date > today:
        message = f"Must be a date, not after today ({today})."
        raise ValidationFailed(f"Invalid value date: {message}", fields={"value_date": [message]})
    found = MarginMovement.objects.filter(kind=MarginMovementKind.DEPOSIT, reference=reference)
    existing = found.first()
    if existing is not None:
        if (existing.account_id, existing.amount, existing.value_date) != (
            account.pk,
            amount,
            value_date,
        ):
            raise MarginReferenceReused(
                f"Reference {reference!r} was already used for another deposit.",
                fields={"reference": ["Already used for a different deposit."]},
            )
        return existing, False
    entry = ledger_post(
        kind=EntryKind.MARGIN_DEPOSIT,
        idempotency_key=f"margin-deposit:{reference}",
        business_date=value_date,
        currency=account.currency,
        program=account.program,
        postings=[
            Posting.dr(AccountCode.SETTLEMENT, amount),
            Posting.cr(AccountCode.MARGIN_FREE, amount),
        ],
        description=f"Margin {account.reference}",
    )
    MarginAccount.objects.filter(pk=account.pk).update(free=F("free") + amount)
    movement = _movement(
        account,
        MarginMovementKind.DEPOSIT,
        amount,
        value_date=value_date,
        reference=reference,
        source=source,
        journal_entry=entry,
        actor=actor if getattr(actor, "pk", None) else None,
    )
    audit_record(
        actor=actor,
        action="margin.deposit",
        obj=account,
        after={"amount": str(amount), "reference": reference, "value_date": str(value_date)},
    )
    return movement, True


def _require_ops(user: User) -> None:
    if getattr(user, "role", None) != Role.OPS_ADMIN:
        raise PermissionDenied("Only operations pay margin out.")


@transaction.atomic
def margin_withdraw_request(
    *, actor: User, account: MarginAccount, amount: Decimal, reason: str = ""
) -> MarginWithdrawal:
    """Take free margin out for the agent (to its settlement account). Below or at the terms'
    threshold it is paid at once; above, it waits for a second person.

    Raises ``ValidationFailed``, ``insufficient_free_margin``.
    """
    _require_ops(actor)
    account = _lock(account.pk)
    amount = clean_amount(amount, account.currency, account.currency)
    agent = account.agent
    if not agent.settlement_account_no:
        message = "The agent has no settlement account to pay to."
        raise ValidationFailed(message, fields={"amount": [message]})
    if not MarginAccount.objects.filter(pk=account.pk, free__gte=amount).update(
        free=F("free") - amount
    ):
        raise InsufficientFreeMargin(
            f"Only {account.free:.2f} of the margin is free.",
            fields={"amount": [f"At most {account.free:.2f}."]},
        )
    terms = TripartiteTerms.objects.filter(program_id=account.program_id).first()
    threshold = terms.margin_withdraw_approval_threshold if terms else Decimal(0)
    now = clock.now()
    withdrawal = MarginWithdrawal.objects.create(
        account=account,
        amount=amount,
        currency=account.currency,
        end_to_end_id=f"MW{account.pk:08d}{now:%y%m%d%H%M%S%f}"[:35],
        creditor_name=agent.settlement_account_name or agent.name,
        creditor_account=agent.settlement_account_no,
        creditor_bank=agent.settlement_bank,
        status=WithdrawalStatus.AWAITING_APPROVAL
        if amount > threshold
        else WithdrawalStatus.PENDING,
        requested_by=actor,
        requested_at=now,
        reason=reason[:500],
    )
    _movement(
        account,
        MarginMovementKind.WITHDRAW,
        amount,
        withdrawal=withdrawal,
        reference=withdrawal.end_to_end_id,
        source=MarginSource.API,
        actor=actor,
    )
    audit_record(
        actor=actor,
        action="margin.withdraw_request",
        obj=withdrawal,
        after={"amount": str(amount), "status": withdrawal.status},
        note=reason,
    )
    _send_when_committed(withdrawal)
    return withdrawal


def _lock_withdrawal(withdrawal_id: int, *states: str) -> MarginWithdrawal:
    account_id = (
        MarginWithdrawal.objects.filter(pk=withdrawal_id)
        .values_list("account_id", flat=True)
        .first()
    )
    if account_id is None:
        raise NotFound("No such withdrawal.")
    _lock(account_id)
    withdrawal = margin_withdrawal_lock(withdrawal_id)
    if withdrawal.status not in states:
        raise WithdrawalClosed(f"The withdrawal is {withdrawal.status}.")
    return withdrawal


@transaction.atomic
def margin_withdraw_approve(*, actor: User, withdrawal_id: int) -> MarginWithdrawal:
    """The second person's approval: the payment goes to the bank."""
    _require_ops(actor)
    withdrawal = _lock_withdrawal(withdrawal_id, WithdrawalStatus.AWAITING_APPROVAL)
    if withdrawal.requested_by_id == actor.pk:
        raise MakerCheckerSameUser("The approval must come from another person.")
    withdrawal.status, withdrawal.approved_by = WithdrawalStatus.PENDING, actor
    withdrawal.approved_at = clock.now()
    withdrawal.save(update_fields=["status", "approved_by", "approved_at"])
    audit_record(actor=actor, action="margin.withdraw_approve", obj=withdrawal)
    _send_when_committed(withdrawal)
    return withdrawal


def _give_back(withdrawal: MarginWithdrawal, status: str, actor: Any, note: str) -> None:
    MarginAccount.objects.filter(pk=withdrawal.account_id).update(
        free=F("free") + withdrawal.amount
    )
    withdrawal.status = status
    withdrawal.save(update_fields=["status", "bank_reason_code", "last_error"])
    _movement(
        withdrawal.account,
        MarginMovementKind.WITHDRAW_REVERSED,
        withdrawal.amount,
        withdrawal=withdrawal,
        reference=withdrawal.end_to_end_id,
        source=MarginSource.SYSTEM,
    )
    audit_record(actor=actor, action=f"margin.withdraw_{status}", obj=withdrawal, note=note)


@transaction.atomic
def margin_withdraw_reject(*, actor: User, withdrawal_id: int, reason: str) -> MarginWithdrawal:
    """Refuse a waiting withdrawal: the amount is free again."""
    _require_ops(actor)
    if not (reason or "").strip():
        raise ValidationFailed("Give a reason.", fields={"reason": ["This field is required."]})
    withdrawal = _lock_withdrawal(withdrawal_id, WithdrawalStatus.AWAITING_APPROVAL)
    _give_back(withdrawal, WithdrawalStatus.REJECTED, actor, reason.strip()[:500])
    return withdrawal


@transaction.atomic
def margin_withdraw_mark_sent(*, withdrawal_id: int, bank_reference: str) -> None:
    rows = MarginWithdrawal.objects.filter(pk=withdrawal_id, status=WithdrawalStatus.PENDING)
    rows.update(
        status=WithdrawalStatus.SENT,
        bank_reference=bank_reference,
        sent_at=clock.now(),
        attempts=F("attempts") + 1,
    )


@transaction.atomic
def margin_withdraw_settle(*, withdrawal_id: int, bank_reference: str) -> bool:
    """The bank paid it: Dr margin_free / Cr settlement. Idempotent (False when already final)."""
    account_id = (
        MarginWithdrawal.objects.filter(pk=withdrawal_id).values_list("account_id", flat=True).get()
    )
    _lock(account_id)
    row = margin_withdrawal_lock(withdrawal_id)
    if row.status not in (WithdrawalStatus.PENDING, WithdrawalStatus.SENT):
        return False
    account = row.account
    ledger_post(
        kind=EntryKind.MARGIN_WITHDRAWAL,
        idempotency_key=f"margin-withdrawal:{row.end_to_end_id}",
        business_date=business_date(account.program),
        currency=row.currency,
        program=account.program,
        postings=[
            Posting.dr(AccountCode.MARGIN_FREE, row.amount),
            Posting.cr(AccountCode.SETTLEMENT, row.amount),
        ],
        description=f"Margin withdrawal {account.reference}",
    )
    row.status, row.settled_at = WithdrawalStatus.SETTLED, clock.now()
    row.bank_reference = bank_reference or row.bank_reference
    row.save(update_fields=["status", "settled_at", "bank_reference"])
    audit_record(actor=None, action="margin.withdraw_settled", obj=row)
    return True


@transaction.atomic
def margin_withdraw_fail(*, withdrawal_id: int, reason_code: str, detail: str = "") -> bool:
    """The bank refused it: the amount is free again. Idempotent (False when already final)."""
    account_id = (
        MarginWithdrawal.objects.filter(pk=withdrawal_id)
        .values_list("account_id", flat=True)
        .first()
    )
    if account_id is None:
        return False
    _lock(account_id)
    row = margin_withdrawal_lock(withdrawal_id)
    if row.status not in (WithdrawalStatus.PENDING, WithdrawalStatus.SENT):
        return False
    row.bank_reason_code, row.last_error = reason_code[:16], detail
    _give_back(row, WithdrawalStatus.FAILED, None, f"{reason_code} {detail}".strip())
    return True
