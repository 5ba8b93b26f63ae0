"""The review queue's writes: claim, approve (maker-checker), decline, expire.

A referred finance request is a loan ``in_review`` with credit reserved and one open referral
case. The case moves like this::

    open --claim--> claimed --approve--> approved          (principal <= maker-checker threshold)
    claimed --approve--> awaiting_second_approval --approve by another risk_approver--> approved
    open | claimed | awaiting_second_approval --decline--> declined   (credit released)
    open | claimed | awaiting_second_approval --expire---> expired    (credit released)

A follow-up case (``disbursement_failed``: the payment was refused and the credit released;
``accelerated``: the order was cancelled after payment and the loan made due at once) asks for a
person to act outside the engine, not for a credit decision::

    open --claim--> claimed --close with a note (what was done)--> closed

Locking: every action is one transaction that locks, in this fixed order, the review, its loan,
the loan's credit line, and (only when credit is released) the program. The finance service locks
sales order -> credit line -> program and never waits on a review or a loan, so the two cannot
deadlock. The state is checked after the locks are held, so two reviewers racing on one case see
each other's result. ``reviews_expire`` takes reviews and loans with SKIP LOCKED: it never waits on
a reviewer (a case being worked is picked up by the next run) and two sweepers never expire the
same case. Each action writes its audit rows in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from django.db import transaction

from orders.models import Role, User
from scf import clock
from scf.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

from ..locks import line_lock, lines_lock_ids, loans_locked, programs_lock_ids, reviews_locked
from ..models import (
    REVIEW_OPEN,
    AuditLog,
    CreditLine,
    Loan,
    LoanStatus,
    Review,
    ReviewKind,
    ReviewStatus,
)
from .audit import SYSTEM, actor_label, audit_record
from .credit import credit_release
from .disbursement import disbursement_request
from .lines import credit_line_freeze, credit_line_unfreeze
from .margin_finance import margin_uncommit

# Stable codes a reviewer picks from when declining (add more as needed, never rename).
DECLINE_REASONS: dict[str, str] = {
    "insufficient_documents": "The documents do not support the request.",
    "suspected_fraud": "The request looks fraudulent.",
    "credit_risk": "The credit risk is too high for this request.",
    "agent_request": "The agent withdrew the request.",
    "other": "Another reason, explained in the note.",
}
ACTING_ROLES = (Role.RISK_REVIEWER, Role.RISK_APPROVER)
LINE_ROLES = (*ACTING_ROLES, Role.OPS_ADMIN)  # who may freeze or unfreeze a line
NOTE_MAX_LENGTH = 2000
EXPIRE_BATCH_SIZE = 500
ZERO = Decimal("0.00")


class ReviewClosed(Conflict):
    code = "review_closed"


class ReviewExpired(Conflict):
    code = "review_expired"


class AlreadyClaimed(Conflict):
    code = "already_claimed"


class NotClaimed(Conflict):
    code = "not_claimed"


class LineFrozen(Conflict):
    code = "line_frozen"


class ReviewKindNotSupported(Conflict):
    code = "review_kind_not_supported"


class MakerCheckerSameUser(PermissionDenied):
    code = "maker_checker_same_user"


class ApproverRoleRequired(PermissionDenied):
    code = "approver_role_required"


@dataclass
class Case:
    """A review with its loan (and line) locked, and how they looked before the action."""

    review: Review
    loan: Loan
    line: CreditLine | None
    before: dict[str, Any]


def _snapshot(review: Review, loan: Loan) -> dict[str, Any]:
    return {
        "status": review.status,
        "claimed_by": review.claimed_by_id,
        "first_approver": review.first_approver_id,
        "second_approver": review.second_approver_id,
        "decline_reason": review.decline_reason,
        "loan_status": loan.status,
        "reserved_amount": str(loan.reserved_amount),
    }


def _lock_case(review_id: int, *, line: bool = True, program: bool = False) -> Case:
    """Lock the review, its loan, then (optionally) its credit line and program, in that order.

    Must run inside the caller's transaction. Raises ``NotFound`` for an unknown review.
    """
    review = reviews_locked().filter(pk=review_id).first()
    if review is None:
        raise NotFound("No such review.")
    loan = loans_locked().get(pk=review.loan_id)
    locked_line = line_lock(loan.credit_line_id) if line else None
    if program:
        programs_lock_ids([loan.program_id])
    return Case(review, loan, locked_line, _snapshot(review, loan))


def _require_role(user: User) -> None:
    if getattr(user, "role", None) not in ACTING_ROLES:
        raise PermissionDenied("Only risk reviewers and risk approvers act on review cases.")


def _check_open(review: Review, now: dt.datetime) -> None:
    """The case can still be worked: not closed and not past its deadline."""
    if review.status not in REVIEW_OPEN:
        raise ReviewClosed(f"The case is already {review.status}.")
    if review.expires_at is not None and now >= review.expires_at:
        raise ReviewExpired(f"The case expired at {review.expires_at.isoformat()}.")


def _check_decidable(case: Case, now: dt.datetime) -> None:
    """Approve and decline apply to an open referral whose loan is still in review."""
    _check_open(case.review, now)
    if case.review.kind != ReviewKind.REFERRAL:
        raise ReviewKindNotSupported(f"A {case.review.kind} case cannot be approved or declined.")
    if case.loan.status != LoanStatus.IN_REVIEW:
        raise ReviewClosed(f"The loan is already {case.loan.status}.")


def _clean_note(note: str) -> str:
    note = (note or "").strip()
    if len(note) > NOTE_MAX_LENGTH:
        raise ValidationFailed(
            "The note is too long.",
            fields={"note": [f"Ensure this field has no more than {NOTE_MAX_LENGTH} characters."]},
        )
    return note


def _save(
    case: Case,
    *,
    user: User | None,
    action: str,
    note: str,
    now: dt.datetime,
    review_fields: list[str],
    loan_fields: tuple[str, ...] = (),
) -> None:
    """Append the note, save what changed, and write the audit rows (review, and loan if moved)."""
    review, loan = case.review, case.loan
    by = user.get_username() if user is not None else SYSTEM
    review.notes = [
        *review.notes,
        {"by": by, "at": now.isoformat(), "action": action, "note": note},
    ]
    review.save(update_fields=[*review_fields, "notes"])
    after = _snapshot(review, loan)
    audit_record(
        actor=user,
        action=f"review.{action}",
        obj=review,
        before=case.before,
        after=after,
        note=note,
    )
    if loan_fields:
        loan.save(update_fields=list(loan_fields))
        _audit_loan(case, user, note)


def _audit_loan(case: Case, user: User | None, note: str) -> None:
    loan = case.loan
    audit_record(
        actor=user,
        action=f"loan.{loan.status}",
        obj=loan,
        before={"status": case.before["loan_status"], "reserved": case.before["reserved_amount"]},
        after={
            "status": loan.status,
            "reserved": str(loan.reserved_amount),
            "review": case.review.pk,
        },
        note=note,
    )


@transaction.atomic
def review_claim(*, user: User, review_id: int, note: str = "") -> Review:
    """Take an open case. Claiming one's own case again changes nothing.

    Locks the review and its loan. Raises ``already_claimed`` (someone else has it),
    ``review_closed`` or ``review_expired``.
    """
    _require_role(user)
    note = _clean_note(note)
    now = clock.now()
    case = _lock_case(review_id, line=False)
    review = case.review
    _check_open(review, now)
    if review.claimed_by_id == user.pk:
        return review
    if review.claimed_by_id is not None:
        raise AlreadyClaimed(
            "Another reviewer has claimed this case.", extra={"claimed_by": review.claimed_by_id}
        )
    review.status = ReviewStatus.CLAIMED
    review.claimed_by, review.claimed_at = user, now
    _save(
        case,
        user=user,
        action="claim",
        note=note,
        now=now,
        review_fields=["status", "claimed_by", "claimed_at"],
    )
    return review


def _check_approver(review: Review, user: User) -> None:
    """First approval: the claimer. Second: a risk approver who did not give the first."""
    if review.status != ReviewStatus.AWAITING_SECOND_APPROVAL:
        if review.claimed_by_id != user.pk:
            raise NotClaimed("Claim the case before approving it.")
        return
    if review.first_approver_id == user.pk:
        raise MakerCheckerSameUser("The second approval must come from another person.")
    if user.role != Role.RISK_APPROVER:
        raise ApproverRoleRequired("The second approval needs a risk approver.")


def _record_approver(review: Review, user: User, now: dt.datetime) -> tuple[str, list[str]]:
    """Set the first or the second approver; returns the action name and the fields set."""
    if review.status == ReviewStatus.AWAITING_SECOND_APPROVAL:
        review.second_approver, review.second_approved_at = user, now
        return "second_approval", ["second_approver", "second_approved_at"]
    review.first_approver, review.first_approved_at = user, now
    return "first_approval", ["first_approver", "first_approved_at"]


def approval_blocker(*, line: CreditLine | None) -> str | None:
    """Why no one can approve a referral on ``line`` now (an error code), or None.

    The case page disables its Approve button with this reason; ``review_approve`` refuses with it.
    """
    if line is not None and line.frozen:
        return LineFrozen.code
    return None


@transaction.atomic
def review_approve(*, user: User, review_id: int, note: str = "") -> Review:
    """Approve a referred request; above the maker-checker threshold, two people must approve.

    Locks the review, its loan and its credit line (the reservation stays; nothing is released).
    Raises ``not_claimed``, ``maker_checker_same_user``, ``approver_role_required``,
    ``line_frozen``, ``review_closed``, ``review_expired``.
    """
    _require_role(user)
    note = _clean_note(note)
    now = clock.now()
    case = _lock_case(review_id)
    _check_decidable(case, now)
    review, loan = case.review, case.loan
    _check_approver(review, user)
    if approval_blocker(line=case.line) is not None:
        raise LineFrozen("The agent's credit line is frozen.")
    action, fields = _record_approver(review, user, now)
    loan_fields: tuple[str, ...] = ()
    if review.requires_second_approval and review.second_approver_id is None:
        review.status = ReviewStatus.AWAITING_SECOND_APPROVAL
    else:
        review.status, review.decided_by, review.closed_at = ReviewStatus.APPROVED, user, now
        loan.status, loan.approved_at = LoanStatus.APPROVED, now
        fields += ["decided_by", "closed_at"]
        loan_fields = ("status", "approved_at")
        action = "approve" if action == "first_approval" else action
    _save(
        case,
        user=user,
        action=action,
        note=note,
        now=now,
        review_fields=["status", *fields],
        loan_fields=loan_fields,
    )
    if loan.status == LoanStatus.APPROVED:
        # Fully approved: the payment is recorded in this transaction, sent after commit.
        disbursement_request(loan=loan, actor=user)
    return review


FOLLOW_UP_KINDS = (ReviewKind.DISBURSEMENT_FAILED, ReviewKind.ACCELERATED)


@transaction.atomic
def review_close(*, user: User, review_id: int, note: str) -> Review:
    """Close a follow-up case (failed disbursement, accelerated loan) with what was done.

    Only the reviewer who claimed it closes it; the note is required (it is the record of the
    follow-up). The loan is not changed: its credit was already released (failed payment) or it
    is already due (acceleration) and is collected by repayments. Referrals are decided with
    approve or decline instead (``review_kind_not_supported``). Raises ``not_claimed``,
    ``review_closed``, ``review_expired``, ``validation_error`` (no note).
    """
    _require_role(user)
    note = _clean_note(note)
    if not note:
        raise ValidationFailed(
            "Say what was done in the note.", fields={"note": ["This field is required."]}
        )
    now = clock.now()
    case = _lock_case(review_id, line=False)
    review = case.review
    _check_open(review, now)
    if review.kind not in FOLLOW_UP_KINDS:
        raise ReviewKindNotSupported("A referral is approved or declined, not closed.")
    if review.claimed_by_id != user.pk:
        raise NotClaimed("Claim the case before closing it.")
    review.status, review.decided_by, review.closed_at = ReviewStatus.CLOSED, user, now
    _save(
        case,
        user=user,
        action="close",
        note=note,
        now=now,
        review_fields=["status", "decided_by", "closed_at"],
    )
    return review


@transaction.atomic
def review_line_freeze(*, user: User, review_id: int, reason: str) -> Review:
    """Freeze the case's credit line from the case; the freeze goes into the case's notes too.

    Locks the review, its loan, then its credit line (the order of every review action).
    ``credit_line_freeze`` writes the line's audit row, this function the case's note and its
    audit row (``review.line_freeze``), in the same transaction. Raises ``ValidationFailed`` (no
    reason), ``line_already_frozen``, ``permission_denied``.
    """
    return _line_action(user, review_id, reason, freeze=True)


@transaction.atomic
def review_line_unfreeze(*, user: User, review_id: int, reason: str) -> Review:
    """Lift the freeze of the case's credit line from the case, noted like ``review_line_freeze``.

    Raises ``ValidationFailed`` (no reason), ``line_already_unfrozen``, ``permission_denied``.
    """
    return _line_action(user, review_id, reason, freeze=False)


def _line_action(user: User, review_id: int, reason: str, *, freeze: bool) -> Review:
    if getattr(user, "role", None) not in LINE_ROLES:
        raise PermissionDenied("Only bank staff freeze and unfreeze credit lines.")
    now = clock.now()
    case = _lock_case(review_id)
    change = credit_line_freeze if freeze else credit_line_unfreeze
    line = change(actor=user, line=cast(CreditLine, case.line), reason=reason)
    action = "line_freeze" if freeze else "line_unfreeze"
    note = line.frozen_reason if freeze else reason.strip()
    _save(case, user=user, action=action, note=note, now=now, review_fields=[])
    return case.review


def _check_decline_input(reason: str, note: str) -> str:
    """Validate the reason code (and the note ``other`` needs) before anything is locked."""
    if reason not in DECLINE_REASONS:
        raise ValidationFailed(
            "Unknown decline reason.",
            code="invalid_decline_reason",
            fields={"reason": [f"Choose one of: {', '.join(DECLINE_REASONS)}."]},
        )
    note = _clean_note(note)
    if reason == "other" and not note:
        raise ValidationFailed(
            "Explain the decline in the note.", fields={"note": ["Required when reason is other."]}
        )
    return note


def _check_decliner(review: Review, user: User) -> None:
    """The claimer declines; once awaiting a second approval, the checker may decline too."""
    if review.claimed_by_id == user.pk:
        return
    if review.status == ReviewStatus.AWAITING_SECOND_APPROVAL and user.role == Role.RISK_APPROVER:
        return
    raise NotClaimed("Claim the case before declining it.")


@transaction.atomic
def review_decline(*, user: User, review_id: int, reason: str, note: str = "") -> Review:
    """Decline a referred request and give its reserved credit back to the line and program.

    Locks the review, its loan, its credit line, then its program. Raises ``ValidationFailed``
    (bad reason, before any write), ``not_claimed``, ``review_closed``, ``review_expired``.
    """
    _require_role(user)
    note = _check_decline_input(reason, note)
    now = clock.now()
    case = _lock_case(review_id, program=True)
    _check_decidable(case, now)
    review, loan = case.review, case.loan
    _check_decliner(review, user)
    margin_uncommit([loan])
    credit_release(
        line_id=loan.credit_line_id, program_id=loan.program_id, amount=loan.reserved_amount
    )
    loan.status, loan.reserved_amount, loan.closed_at = LoanStatus.DECLINED, ZERO, now
    review.status, review.decided_by = ReviewStatus.DECLINED, user
    review.decline_reason, review.closed_at = reason, now
    _save(
        case,
        user=user,
        action="decline",
        note=note,
        now=now,
        review_fields=["status", "decided_by", "decline_reason", "closed_at"],
        loan_fields=("status", "reserved_amount", "closed_at"),
    )
    return review


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
    before = {r.pk: _snapshot(r, loans[r.loan_id]) for r in reviews}
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
        _audit_row("review.expire", r, before[r.pk], _snapshot(r, loans[r.loan_id]))
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
