"""Expiry of review cases past their deadline: the loan expires and its credit is released.

``reviews_expire`` takes reviews and loans with SKIP LOCKED: it never waits on a reviewer (a
case being worked is picked up by the next run) and two sweepers never expire the same case.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.db import transaction

from scf import clock

from ..locks import lines_lock_ids, loans_locked, programs_lock_ids, reviews_locked
from ..models import (
    REVIEW_OPEN,
    AuditLog,
    Loan,
    LoanStatus,
    Review,
    ReviewStatus,
)
from .audit import SYSTEM, actor_label
from .credit import credit_release
from .margin_finance import margin_uncommit
from .review_case import ZERO, case_snapshot

EXPIRE_BATCH_SIZE = 500


def reviews_expire(*, now: dt.datetime | None = None, batch_size: int = EXPIRE_BATCH_SIZE) -> int:
    """Expire every open case past its deadline; its loan expires and its credit is released.

    Works in batches, each its own transaction (see ``_expire_batch`` for the locks), walking
    review ids upwards so a case skipped because it is locked is left for the next run.
    Returns how many cases were expired. Safe to run twice or concurrently.
    """
    now = now or clock.now()
    total, after_id = 0, 0
    while True:
        expired, last_id = _expire_batch(now=now, after_id=after_id, batch_size=batch_size)
        total += expired
        if last_id is None:
            return total
        after_id = last_id


@transaction.atomic
def _expire_batch(*, now: dt.datetime, after_id: int, batch_size: int) -> tuple[int, int | None]:
    """Expire one batch. Locks reviews, then their loans (both SKIP LOCKED), then lines, programs.

    Returns ``(expired, last review id seen)``, or ``(0, None)`` when nothing is left.
    """
    candidates = list(
        reviews_locked(skip_locked=True)
        .filter(status__in=REVIEW_OPEN, expires_at__lte=now, pk__gt=after_id)
        .order_by("pk")[:batch_size]
    )
    if not candidates:
        return 0, None
    loans = {
        loan.pk: loan
        for loan in loans_locked(skip_locked=True)
        .filter(pk__in={r.loan_id for r in candidates})
        .order_by("pk")
    }
    reviews = [r for r in candidates if r.loan_id in loans]
    in_review = [
        loans[pk] for pk in {r.loan_id for r in reviews} if loans[pk].status == LoanStatus.IN_REVIEW
    ]
    _release_all(in_review)
    _mark_expired(reviews, loans, in_review, now)
    return len(reviews), candidates[-1].pk


def _release_all(loans: list[Loan]) -> None:
    """Give back the loans' reservations, one update per line and program (locked in id order)."""
    per_line: dict[tuple[int, int], Decimal] = defaultdict(lambda: ZERO)
    for loan in loans:
        per_line[(loan.credit_line_id, loan.program_id)] += loan.reserved_amount
    line_ids = sorted({line_id for line_id, _ in per_line})
    program_ids = sorted({program_id for _, program_id in per_line})
    lines_lock_ids(line_ids)
    programs_lock_ids(program_ids)
    margin_uncommit(loans)
    for (line_id, program_id), amount in sorted(per_line.items()):
        credit_release(line_id=line_id, program_id=program_id, amount=amount)


def _mark_expired(
    reviews: list[Review], loans: dict[int, Loan], in_review: list[Loan], now: dt.datetime
) -> None:
    """Set-based writes for a batch already locked: reviews, loans, and their audit rows."""
    before = {r.pk: case_snapshot(r, loans[r.loan_id]) for r in reviews}
    reserved_before = {loan.pk: str(loan.reserved_amount) for loan in in_review}
    for loan in in_review:
        loan.status, loan.reserved_amount, loan.closed_at = LoanStatus.EXPIRED, ZERO, now
    for review in reviews:
        review.status, review.closed_at = ReviewStatus.EXPIRED, now
        review.notes = [
            *review.notes,
            {"by": SYSTEM, "at": now.isoformat(), "action": "expire", "note": ""},
        ]
    Review.objects.bulk_update(reviews, ["status", "closed_at", "notes"])
    Loan.objects.filter(pk__in=reserved_before).update(
        status=LoanStatus.EXPIRED, reserved_amount=ZERO, closed_at=now
    )
    rows = [
        _audit_row("review.expire", r, before[r.pk], case_snapshot(r, loans[r.loan_id]))
        for r in reviews
    ]
    rows += [
        _audit_row(
            "loan.expired",
            loan,
            {"status": LoanStatus.IN_REVIEW, "reserved": reserved_before[loan.pk]},
            {"status": loan.status, "reserved": str(loan.reserved_amount)},
        )
        for loan in in_review
    ]
    AuditLog.objects.bulk_create(rows)


def _audit_row(
    action: str, obj: Review | Loan, before: dict[str, Any], after: dict[str, Any]
) -> AuditLog:
    """An unsaved audit row by the system, shaped like ``audit_record`` writes (for bulk insert)."""
    return AuditLog(
        actor=None,
        actor_label=actor_label(None),
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        before=before,
        after=after,
    )
