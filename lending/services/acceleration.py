"""Order changes after financing: a cancelled order stops its loan, or makes it due at once.

What a cancellation does depends on how far the loan got:

==========================  ===========================================================
loan status                 on cancellation of its order
==========================  ===========================================================
``in_review``, ``approved``  ``declined``, reservation released, open review cases closed
``disbursing``               left alone (the money may be moving); an ``accelerated``
                             review case is opened for the risk team
``active``, ``overdue``      accelerated: due date brought forward to
                             today's business date, ``accelerated_at`` set, an
                             ``accelerated`` review case opened
anything else                nothing
==========================  ===========================================================

An approved loan that already has a ``Disbursement`` row is treated as ``disbursing``.

Entry points: ``orders_cancelled`` (the order feed calls it, through ``integrations``, for the
orders a batch or event cancelled) and ``cancelled_orders_sweep`` (periodic): the order's own
``cancelled`` status is the durable record, so a cancellation whose follow-up was lost (a crash
after the feed committed, a disbursement that settled after the cancellation) is applied by the
next sweep. Every step is idempotent: a loan already declined or accelerated is left as it is,
and at most one ``accelerated`` case is ever opened by a sweep.

Locking, per loan and in one transaction: the program's COB advisory lock in shared mode (only
to move a due date: COB computes days past due from it), then the loan's open review cases (the
review queue locks review -> loan), then the loan, then the credit line -> program (by
``credit_release``'s conditional UPDATEs, last). The feed may already hold the sales order row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from orders.models import OrderStatus
from scf import clock

from ..locks import loans_locked, program_lock, reviews_locked
from ..models import (
    OPEN,
    REVIEW_OPEN,
    Disbursement,
    Loan,
    LoanStatus,
    Review,
    ReviewKind,
    ReviewStatus,
)
from .audit import SYSTEM, audit_record
from .credit import credit_release

ORDER_CANCELLED = "order_cancelled"
STOPPABLE = (LoanStatus.IN_REVIEW, LoanStatus.APPROVED)
AFFECTED = (*STOPPABLE, LoanStatus.DISBURSING, *OPEN)
SWEEP_BATCH = 500
ZERO = Decimal("0.00")


class CancellationOutcome(StrEnum):
    ACCELERATED = "accelerated"
    DECLINED = "declined"
    FLAGGED = "flagged"  # disbursing: a review case was opened, the loan left as it is
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class CancellationResult:
    loan_id: int
    outcome: CancellationOutcome


def _note(action: str, note: str, now: dt.datetime) -> dict[str, str]:
    return {"by": SYSTEM, "at": now.isoformat(), "action": action, "note": note}


def _open_case(loan: Loan, reason: str, now: dt.datetime) -> Review | None:
    """Open an ``accelerated`` case unless one is open. The caller holds the loan's lock, and
    everyone who opens one does, so the check cannot race."""
    open_case = Review.objects.filter(
        loan_id=loan.pk, kind=ReviewKind.ACCELERATED, status__in=REVIEW_OPEN
    ).exists()
    if open_case:
        return None
    return Review.objects.create(
        loan=loan,
        kind=ReviewKind.ACCELERATED,
        created_at=now,
        notes=[_note("open", reason, now)],
    )


def _accelerate(loan: Loan, *, reason: str, actor: Any, now: dt.datetime) -> None:
    """Bring a locked, disbursed loan's due date forward to today and open the case."""
    today = clock.business_date(loan.program.time_zone, now)
    before = {"due_date": loan.due_date.isoformat(), "accelerated_at": None}
    loan.due_date = min(loan.due_date, today)
    loan.accelerated_at = now
    loan.save(update_fields=["due_date", "accelerated_at"])
    case = _open_case(loan, reason, now)
    audit_record(
        actor=actor,
        action="loan.accelerated",
        obj=loan,
        before=before,
        after={
            "due_date": loan.due_date.isoformat(),
            "accelerated_at": now.isoformat(),
            "review": case.pk if case else None,
        },
        note=reason,
    )


def _lock_loan(loan_id: int) -> Loan:
    return loans_locked().select_related("program").get(pk=loan_id)


def _decline(loan: Loan, reviews: list[Review], actor: Any, now: dt.datetime) -> None:
    """Stop a locked loan that has not been paid out: declined, credit and cases released."""
    reserved = loan.reserved_amount
    credit_release(line_id=loan.credit_line_id, program_id=loan.program_id, amount=reserved)
    status_before = loan.status
    loan.status, loan.reserved_amount, loan.closed_at = LoanStatus.DECLINED, ZERO, now
    loan.save(update_fields=["status", "reserved_amount", "closed_at"])
    for review in reviews:
        review.status, review.closed_at = ReviewStatus.CLOSED, now
        review.notes = [*review.notes, _note("close", ORDER_CANCELLED, now)]
        review.save(update_fields=["status", "closed_at", "notes"])
    audit_record(
        actor=actor,
        action="loan.declined",
        obj=loan,
        before={"status": status_before, "reserved": str(reserved)},
        after={
            "status": loan.status,
            "reserved": str(loan.reserved_amount),
            "reviews_closed": [r.pk for r in reviews],
        },
        note=ORDER_CANCELLED,
    )


def _flag(loan: Loan, actor: Any, now: dt.datetime) -> CancellationOutcome:
    case = _open_case(loan, ORDER_CANCELLED, now)
    if case is None:
        return CancellationOutcome.UNCHANGED
    audit_record(
        actor=actor,
        action="loan.order_cancelled",
        obj=loan,
        after={"status": loan.status, "review": case.pk},
        note="order cancelled while the loan is being paid out",
    )
    return CancellationOutcome.FLAGGED


@transaction.atomic
def loan_order_cancelled(*, loan_id: int, actor: Any = None) -> CancellationOutcome:
    """Apply the cancellation of its order to one loan (see the module docstring). Idempotent."""
    program_id = Loan.objects.values_list("program_id", flat=True).get(pk=loan_id)
    program_lock(program_id, exclusive=False)
    reviews = list(reviews_locked().filter(loan_id=loan_id, status__in=REVIEW_OPEN).order_by("pk"))
    loan = _lock_loan(loan_id)
    now = clock.now()
    if loan.status in OPEN:
        if loan.accelerated_at is not None:
            return CancellationOutcome.UNCHANGED
        _accelerate(loan, reason=ORDER_CANCELLED, actor=actor, now=now)
        return CancellationOutcome.ACCELERATED
    paying = loan.status == LoanStatus.DISBURSING or (
        loan.status == LoanStatus.APPROVED and Disbursement.objects.filter(loan_id=loan.pk).exists()
    )
    if paying:
        return _flag(loan, actor, now)
    if loan.status in STOPPABLE:
        _decline(loan, [r for r in reviews if r.kind == ReviewKind.REFERRAL], actor, now)
        return CancellationOutcome.DECLINED
    return CancellationOutcome.UNCHANGED


def orders_cancelled(*, order_ids: Iterable[int], actor: Any = None) -> list[CancellationResult]:
    """The orders were cancelled: stop or accelerate every loan that holds one of them.

    One query finds the loans; each is handled in its own transaction (a savepoint when the
    caller has one open), in loan id order. Safe to call again for the same orders.
    """
    ids = sorted(set(order_ids))
    if not ids:
        return []
    loan_ids = (
        Loan.objects.filter(order_id__in=ids, status__in=AFFECTED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return [
        CancellationResult(loan_id, loan_order_cancelled(loan_id=loan_id, actor=actor))
        for loan_id in list(loan_ids)
    ]


def _unapplied_cancellations() -> Q:
    """Loans on cancelled orders whose cancellation has not been applied yet."""
    paying = Exists(Disbursement.objects.filter(loan_id=OuterRef("pk")))
    ever_flagged = Exists(
        Review.objects.filter(loan_id=OuterRef("pk"), kind=ReviewKind.ACCELERATED)
    )
    return (
        Q(status=LoanStatus.IN_REVIEW)
        | Q(~paying, status=LoanStatus.APPROVED)
        | Q(status__in=OPEN, accelerated_at__isnull=True)
        | Q(~ever_flagged, status__in=[LoanStatus.DISBURSING, LoanStatus.APPROVED])
    )


def cancelled_orders_sweep(*, limit: int = SWEEP_BATCH) -> list[CancellationResult]:
    """Periodic: apply cancellations the feed's follow-up missed. Set-based selection of the
    loans on cancelled orders still to act on; then ``orders_cancelled`` for their orders."""
    order_ids = (
        Loan.objects.filter(order__status=OrderStatus.CANCELLED)
        .filter(_unapplied_cancellations())
        .order_by("order_id")
        .values_list("order_id", flat=True)
        .distinct()
    )
    return orders_cancelled(order_ids=list(order_ids[:limit]))
