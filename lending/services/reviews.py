"""The review queue's decisions: claim, approve (maker-checker), decline, close, freeze the line.

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

The locks, the audit rows and the errors every action shares are in ``review_case``; expiry (the
sweeper) is ``review_expiry``.
"""

from __future__ import annotations

import datetime as dt
from typing import cast

from django.db import transaction

from orders.models import Role, User
from scf import clock
from scf.errors import PermissionDenied, ValidationFailed

from ..models import CreditLine, LoanStatus, Review, ReviewKind, ReviewStatus
from .credit import credit_release
from .disbursement import disbursement_request
from .lines import credit_line_freeze, credit_line_unfreeze
from .margin_finance import margin_uncommit
from .review_case import (
    LINE_ROLES,
    ZERO,
    AlreadyClaimed,
    ApproverRoleRequired,
    LineFrozen,
    MakerCheckerSameUser,
    NotClaimed,
    ReviewKindNotSupported,
    acting_role_require,
    case_check_decidable,
    case_check_open,
    case_lock,
    case_save,
    note_clean,
)

# Stable codes a reviewer picks from when declining (add more as needed, never rename).
DECLINE_REASONS: dict[str, str] = {
    "insufficient_documents": "The documents do not support the request.",
    "suspected_fraud": "The request looks fraudulent.",
    "credit_risk": "The credit risk is too high for this request.",
    "agent_request": "The agent withdrew the request.",
    "other": "Another reason, explained in the note.",
}


@transaction.atomic
def review_claim(
    *, user: User, review_id: int, note: str = "", at: dt.datetime | None = None
) -> Review:
    """Take an open case. Claiming one's own case again changes nothing.

    Locks the review and its loan. Raises ``already_claimed`` (someone else has it),
    ``review_closed`` or ``review_expired``. ``at``: the moment (default now).
    """
    acting_role_require(user)
    note = note_clean(note)
    now = at or clock.now()
    case = case_lock(review_id, line=False)
    review = case.review
    case_check_open(review, now)
    if review.claimed_by_id == user.pk:
        return review
    if review.claimed_by_id is not None:
        raise AlreadyClaimed(
            "Another reviewer has claimed this case.", extra={"claimed_by": review.claimed_by_id}
        )
    review.status = ReviewStatus.CLAIMED
    review.claimed_by, review.claimed_at = user, now
    case_save(
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
def review_approve(
    *, user: User, review_id: int, note: str = "", at: dt.datetime | None = None
) -> Review:
    """Approve a referred request; above the maker-checker threshold, two people must approve.

    Locks the review, its loan and its credit line (the reservation stays; nothing is released).
    Raises ``not_claimed``, ``maker_checker_same_user``, ``approver_role_required``,
    ``line_frozen``, ``review_closed``, ``review_expired``. ``at``: the moment (default now).
    """
    acting_role_require(user)
    note = note_clean(note)
    now = at or clock.now()
    case = case_lock(review_id)
    case_check_decidable(case, now)
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
    case_save(
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
        disbursement_request(loan=loan, actor=user, at=now)
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
    acting_role_require(user)
    note = note_clean(note)
    if not note:
        raise ValidationFailed(
            "Say what was done in the note.", fields={"note": ["This field is required."]}
        )
    now = clock.now()
    case = case_lock(review_id, line=False)
    review = case.review
    case_check_open(review, now)
    if review.kind not in FOLLOW_UP_KINDS:
        raise ReviewKindNotSupported("A referral is approved or declined, not closed.")
    if review.claimed_by_id != user.pk:
        raise NotClaimed("Claim the case before closing it.")
    review.status, review.decided_by, review.closed_at = ReviewStatus.CLOSED, user, now
    case_save(
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
    case = case_lock(review_id)
    change = credit_line_freeze if freeze else credit_line_unfreeze
    line = change(actor=user, line=cast(CreditLine, case.line), reason=reason)
    action = "line_freeze" if freeze else "line_unfreeze"
    note = line.frozen_reason if freeze else reason.strip()
    case_save(case, user=user, action=action, note=note, now=now, review_fields=[])
    return case.review


def _check_decline_input(reason: str, note: str) -> str:
    """Validate the reason code (and the note ``other`` needs) before anything is locked."""
    if reason not in DECLINE_REASONS:
        raise ValidationFailed(
            "Unknown decline reason.",
            code="invalid_decline_reason",
            fields={"reason": [f"Choose one of: {', '.join(DECLINE_REASONS)}."]},
        )
    note = note_clean(note)
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
    acting_role_require(user)
    note = _check_decline_input(reason, note)
    now = clock.now()
    case = case_lock(review_id, program=True)
    case_check_decidable(case, now)
    review, loan = case.review, case.loan
    _check_decliner(review, user)
    margin_uncommit([loan])
    credit_release(
        line_id=loan.credit_line_id, program_id=loan.program_id, amount=loan.reserved_amount
    )
    loan.status, loan.reserved_amount, loan.closed_at = LoanStatus.DECLINED, ZERO, now
    review.status, review.decided_by = ReviewStatus.DECLINED, user
    review.decline_reason, review.closed_at = reason, now
    case_save(
        case,
        user=user,
        action="decline",
        note=note,
        now=now,
        review_fields=["status", "decided_by", "decline_reason", "closed_at"],
        loan_fields=("status", "reserved_amount", "closed_at"),
    )
    return review
