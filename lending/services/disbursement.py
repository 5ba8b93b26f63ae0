"""Paying a loan out: the state transitions of a ``Disbursement``. No bank calls here.

The disbursement row is the outbox: it is written in the transaction that approves the loan, and
the task that talks to the bank (``settings.DISBURSEMENT_TASK``, queued by *name* after commit,
since lending never imports integrations) only ever works from it. A lost task message is
harmless: ``selectors.loans.disbursements_due`` finds every row that is neither settled nor failed and whose
lease is free, and the sweeper dispatches it again (``disbursements_hold`` then keeps the next
sweeps from sending it yet again while that message waits in a long queue).

Lifecycle (``DisbursementStatus``)::

    pending --mark_sent--> sent --settle--> settled      (loan disbursing -> active)
    pending | sent --fail--> failed                      (loan -> disbursement_failed)
    pending --settle--> settled                          (the bank settled before we heard)

Exactly once: the end-to-end id (``SCFD`` + loan id) makes the bank idempotent; the lease (a
conditional UPDATE) keeps two workers from working one disbursement at once; every transition
checks the state under row locks, so settling or failing twice does nothing the second time;
the ledger entry's idempotency key (``disburse:<loan>``) makes a double post impossible anyway.

Locking, always in this order: loan -> disbursement -> credit line -> program. The line and
program are only touched by ``credit_consume``/``credit_release`` (conditional UPDATEs, line
first), as the last statements of the transaction, so the shared program row is held briefly.
The finance service (order -> line -> program) and the review queue (review -> loan -> line ->
program) take their locks in a compatible order, so none of them can deadlock with these.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from scf import clock
from scf.enqueue import batch_relay, enqueue_on_commit
from scf.errors import Conflict
from scf.hotpath import build
from scf.task_relay import BatchRelay

from ..locks import disbursement_lock, loans_locked
from ..models import (
    AuditLog,
    Disbursement,
    DisbursementStatus,
    EntryKind,
    Loan,
    LoanStatus,
    Review,
    ReviewKind,
)
from ..selectors.loans import PAYING
from .audit import audit_build, audit_record
from .credit import credit_consume, credit_release
from .ledger import ledger_post
from .margin_finance import (
    disbursement_amount,
    hold_of,
    margin_pay_out,
    margin_uncommit,
)
from .margin_ledger import disbursement_postings
from .terms import due_date_for

WORKING = PAYING
ZERO = Decimal("0.00")


class DisbursementStateError(Conflict):
    """A transition the disbursement or its loan is not in a state for."""

    code = "disbursement_state"


def end_to_end_id_for(loan_id: int) -> str:
    """The payment's ISO 20022 end-to-end id: deterministic, 16 characters (limit 35)."""
    return f"SCFD{loan_id:012d}"


def creditor_of(enterprise: Any) -> tuple[str, str, str]:
    """Name, account and bank of the core enterprise's settlement account: the creditor."""
    name = enterprise.settlement_account_name or enterprise.name
    return name[:200], enterprise.settlement_account_no, enterprise.settlement_bank[:200]


def disbursement_build(
    *, loan: Loan, enterprise: Any, actor: Any, now: dt.datetime
) -> tuple[Disbursement, AuditLog]:
    """The payment row of an approved loan and the audit of its ``approved -> disbursing`` step,
    both unsaved: the creditor is the core enterprise's settlement account; the end-to-end id is
    left empty while the loan has no id (set it when the loan is saved)."""
    name, account, bank = creditor_of(enterprise)
    disbursement = build(
        Disbursement,
        loan=loan,
        end_to_end_id=end_to_end_id_for(loan.pk) if loan.pk else "",
        amount=loan.principal,
        currency=loan.currency,
        creditor_name=name,
        creditor_account=account,
        creditor_bank=bank,
        created_at=now,
    )
    audit = audit_build(
        actor=actor,
        action="loan.disbursing",
        obj=loan,
        before={"status": LoanStatus.APPROVED},
        after={"status": LoanStatus.DISBURSING, "end_to_end_id": disbursement.end_to_end_id},
    )
    return disbursement, audit


@transaction.atomic
def disbursement_request(
    *, loan: Loan, actor: Any = None, at: dt.datetime | None = None
) -> Disbursement:
    """Record the payment of an approved loan and queue it: loan ``approved -> disbursing``.

    Call it in the transaction that approves the loan. Locks the loan (``lending.locks``);
    ``DisbursementStateError`` unless it is ``approved``. The creditor is the core
    enterprise's settlement account. The task is dispatched after commit (a failed dispatch is
    logged, not raised: the sweeper sends it later). ``loan`` is updated in place. ``at``: the
    moment it is recorded (default now).
    """
    locked = loans_locked().select_related("program__enterprise").get(pk=loan.pk)
    if locked.status != LoanStatus.APPROVED:
        raise DisbursementStateError(f"Loan {loan.pk} is {locked.status}, not approved.")
    disbursement, audit = disbursement_build(
        loan=locked, enterprise=locked.program.enterprise, actor=actor, now=at or clock.now()
    )
    # Under a tripartite program the enterprise is paid the agent's margin with the loan.
    disbursement.amount = disbursement_amount(locked, hold_of(locked))
    disbursement.save(force_insert=True)
    locked.status = loan.status = LoanStatus.DISBURSING
    locked.save(update_fields=["status"])
    audit.save(force_insert=True)
    disbursement_queue(disbursement.pk)
    return disbursement


def disbursement_queue(disbursement_id: int) -> None:
    """Dispatch the payment once the current transaction commits (a failed dispatch is logged,
    not raised: the outbox sweeper sends it later). With a real broker the id goes to this
    process's relay, which sends one ``DISBURSEMENT_BATCH_TASK`` message per batch gathered
    within ``DISBURSEMENT_RELAY_LINGER_SECONDS``; eager Celery runs ``DISBURSEMENT_TASK`` in
    place."""
    enqueue_on_commit(settings.DISBURSEMENT_TASK, [disbursement_id], relay=payout_relay())


@lru_cache(maxsize=1)
def payout_relay() -> BatchRelay:
    """This process's relay of disbursement ids to the payment workers (``scf.task_relay``)."""
    return batch_relay(
        "payouts",
        settings.DISBURSEMENT_BATCH_TASK,
        linger=settings.DISBURSEMENT_RELAY_LINGER_SECONDS,
        max_batch=settings.DISBURSEMENT_RELAY_MAX_BATCH,
    )


def disbursement_lease(*, disbursement_id: int, seconds: float) -> Disbursement | None:
    """Take the right to work a disbursement for ``seconds``; None if final or leased elsewhere.

    One conditional UPDATE (atomic on its own, no lock held after it): only a pending or sent
    row whose lease is free or expired; ``attempts`` counts the leases taken; a retry time or a
    sweeper's hold is cleared (the holder sets a new one if it gives the lease back). Run it
    outside a transaction so other workers see the lease at once.
    """
    now = clock.now()
    taken = (
        Disbursement.objects.filter(pk=disbursement_id, status__in=WORKING)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))
        .update(
            lease_until=now + dt.timedelta(seconds=seconds),
            attempts=F("attempts") + 1,
            next_attempt_at=None,  # a sweeper's hold is over: this lease now decides
        )
    )
    if not taken:
        return None
    return Disbursement.objects.select_related("loan__program__bank", "loan__order").get(
        pk=disbursement_id
    )


def disbursement_release(
    *,
    disbursement_id: int,
    lease_until: dt.datetime | None,
    next_attempt_at: dt.datetime | None,
    error: str = "",
) -> bool:
    """Give a lease back (only the holder's: ``lease_until`` fences it) and say when to retry.

    One conditional UPDATE; False when the lease had already passed to someone else or the
    disbursement became final.
    """
    changes: dict[str, Any] = {"lease_until": None, "next_attempt_at": next_attempt_at}
    if error:
        changes["last_error"] = error[:2000]
    return bool(
        Disbursement.objects.filter(
            pk=disbursement_id, status__in=WORKING, lease_until=lease_until
        ).update(**changes)
    )


@transaction.atomic
def disbursement_mark_sent(*, disbursement_id: int, bank_reference: str = "") -> Disbursement:
    """The bank has (or may have) the transfer: ``pending -> sent``. Idempotent.

    Locks the disbursement row. A sent row only gains a missing bank reference; settled and
    failed rows are left alone (a late or duplicate acceptance after the final state).
    """
    disbursement = disbursement_lock(disbursement_id)
    fields: list[str] = []
    if disbursement.status == DisbursementStatus.PENDING:
        disbursement.status = DisbursementStatus.SENT
        disbursement.sent_at = clock.now()
        fields += ["status", "sent_at"]
    if (
        bank_reference
        and disbursement.status == DisbursementStatus.SENT
        and not disbursement.bank_reference
    ):
        disbursement.bank_reference = bank_reference
        fields.append("bank_reference")
    if fields:
        disbursement.save(update_fields=fields)
    return disbursement


def _lock(disbursement_id: int) -> tuple[Loan, Disbursement]:
    """Lock the loan, then its disbursement (caller's transaction); the loan comes with its
    program (read, not locked)."""
    loan = loans_locked().select_related("program").get(disbursement__pk=disbursement_id)
    disbursement = disbursement_lock(disbursement_id)
    return loan, disbursement


def _post_disbursement(loan: Loan, disbursement: Disbursement, value_date: dt.date) -> None:
    """Dr principal receivable / Cr settlement; under a tripartite program the payment carries
    the agent's margin too (Dr margin committed), which then leaves the margin account, and the
    entry posts the click's free -> committed reclassification (``margin_ledger``)."""
    hold = hold_of(loan)
    entry = ledger_post(
        kind=EntryKind.DISBURSEMENT,
        idempotency_key=f"disburse:{loan.pk}",
        business_date=value_date,
        currency=loan.currency,
        postings=disbursement_postings(loan, hold),
        loan=loan,
        program=loan.program,
        description=f"disbursement {disbursement.end_to_end_id}",
    )
    if hold is not None:
        margin_pay_out(loan=loan, hold=hold, entry=entry, value_date=value_date)


def _activate(loan: Loan, settled_at: dt.datetime) -> None:
    """The loan's money went out: dates from the settlement, principal outstanding."""
    program = loan.program
    loan.value_date = clock.business_date(program.time_zone, settled_at)
    loan.due_date = due_date_for(loan.value_date, loan.tenor_days, program.holiday_country)
    loan.status = LoanStatus.ACTIVE
    loan.disbursed_at = settled_at
    loan.outstanding_principal = loan.principal
    loan.reserved_amount = ZERO
    loan.save(
        update_fields=[
            "status",
            "value_date",
            "due_date",
            "disbursed_at",
            "outstanding_principal",
            "reserved_amount",
        ]
    )


@transaction.atomic
def disbursement_settle(
    *, disbursement_id: int, bank_reference: str, settled_at: dt.datetime
) -> Disbursement:
    """The bank settled the transfer: loan ``disbursing -> active``, ledger, credit consumed.

    Locks loan -> disbursement -> (by conditional UPDATEs, last) line -> program. Idempotent: a
    settled disbursement is returned unchanged. ``DisbursementStateError`` if it had failed
    (money out on a failed loan needs a person) or the loan is not disbursing. The value date is
    the settlement's business date in the program's zone; the due date is recomputed from it.
    """
    loan, disbursement = _lock(disbursement_id)
    if disbursement.status == DisbursementStatus.SETTLED:
        return disbursement
    if disbursement.status not in WORKING or loan.status != LoanStatus.DISBURSING:
        raise DisbursementStateError(
            f"Cannot settle {disbursement}: loan {loan.pk} is {loan.status}."
        )
    reserved = loan.reserved_amount
    _activate(loan, settled_at)
    _post_disbursement(loan, disbursement, loan.value_date or settled_at.date())
    disbursement.status = DisbursementStatus.SETTLED
    disbursement.settled_at = settled_at
    disbursement.bank_reference = bank_reference or disbursement.bank_reference
    disbursement.lease_until = disbursement.next_attempt_at = None
    disbursement.save(
        update_fields=["status", "settled_at", "bank_reference", "lease_until", "next_attempt_at"]
    )
    audit_record(
        actor=None,
        action="loan.disbursed",
        obj=loan,
        before={"status": LoanStatus.DISBURSING, "reserved_amount": str(reserved)},
        after={
            "status": loan.status,
            "outstanding_principal": str(loan.outstanding_principal),
            "value_date": str(loan.value_date),
            "due_date": str(loan.due_date),
            "bank_reference": disbursement.bank_reference,
        },
    )
    credit_consume(
        line_id=loan.credit_line_id,
        program_id=loan.program_id,
        reserved=reserved,
        principal=loan.principal,
    )
    return disbursement


@transaction.atomic
def disbursement_fail(*, disbursement_id: int, reason_code: str, detail: str) -> Disbursement:
    """The payment cannot be made: loan ``disbursing -> disbursement_failed``, credit released,
    a ``disbursement_failed`` review case opened for the risk team.

    Locks loan -> disbursement -> (by conditional UPDATEs, last) line -> program. Idempotent: a
    failed disbursement is returned unchanged; ``DisbursementStateError`` if it had settled.
    """
    loan, disbursement = _lock(disbursement_id)
    if disbursement.status == DisbursementStatus.FAILED:
        return disbursement
    if disbursement.status not in WORKING or loan.status != LoanStatus.DISBURSING:
        raise DisbursementStateError(
            f"Cannot fail {disbursement}: loan {loan.pk} is {loan.status}."
        )
    now = clock.now()
    reserved = loan.reserved_amount
    margin_uncommit([loan])
    loan.status = LoanStatus.DISBURSEMENT_FAILED
    loan.reserved_amount = ZERO
    loan.save(update_fields=["status", "reserved_amount"])
    disbursement.status = DisbursementStatus.FAILED
    disbursement.bank_reason_code = reason_code[:16]
    disbursement.last_error = detail[:2000]
    disbursement.lease_until = disbursement.next_attempt_at = None
    disbursement.save(
        update_fields=["status", "bank_reason_code", "last_error", "lease_until", "next_attempt_at"]
    )
    Review.objects.create(loan=loan, kind=ReviewKind.DISBURSEMENT_FAILED, created_at=now)
    audit_record(
        actor=None,
        action="loan.disbursement_failed",
        obj=loan,
        before={"status": LoanStatus.DISBURSING, "reserved_amount": str(reserved)},
        after={"status": loan.status, "reason_code": reason_code},
        note=detail[:2000],
    )
    credit_release(line_id=loan.credit_line_id, program_id=loan.program_id, amount=reserved)
    return disbursement


def disbursements_hold(*, ids: list[int], seconds: float, now: dt.datetime | None = None) -> int:
    """The sweeper is about to send these again: leave them out of the sweeps of the next
    ``seconds`` (their message is on its way). Moves ``next_attempt_at`` forward by one
    conditional UPDATE, only on rows still due (lease free, no later retry time set meanwhile);
    a lease or a settlement later overrides it. Returns the rows held.

    Without it, a backlog longer than the sweep interval is sent again at every sweep: each
    duplicate is harmless (the lease), but together they fill the queue and starve the real work.
    """
    if not ids or seconds <= 0:
        return 0
    now = now or clock.now()
    return (
        Disbursement.objects.filter(pk__in=ids, status__in=WORKING)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(next_attempt_at=now + dt.timedelta(seconds=seconds))
    )
