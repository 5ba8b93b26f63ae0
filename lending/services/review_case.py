"""What every review action shares: the case's errors, its locks, its note and audit rows.

Locking: every action is one transaction that locks, in this fixed order, the review, its loan,
the loan's credit line, and (only when credit is released) the program (``case_lock``). The
finance service locks sales order -> credit line -> program and never waits on a review or a
loan, so the two cannot deadlock. The state is checked after the locks are held, so two reviewers
racing on one case see each other's result. Each action writes its audit rows in the same
transaction (``case_save``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from orders.models import Role, User
from scf.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

from ..locks import line_lock, loans_locked, programs_lock_ids, reviews_locked
from ..models import REVIEW_OPEN, CreditLine, Loan, LoanStatus, Review, ReviewKind
from .audit import SYSTEM, audit_record

ACTING_ROLES = (Role.RISK_REVIEWER, Role.RISK_APPROVER)
LINE_ROLES = (*ACTING_ROLES, Role.OPS_ADMIN)  # who may freeze or unfreeze a line
NOTE_MAX_LENGTH = 2000
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


def case_snapshot(review: Review, loan: Loan) -> dict[str, Any]:
    return {
        "status": review.status,
        "claimed_by": review.claimed_by_id,
        "first_approver": review.first_approver_id,
        "second_approver": review.second_approver_id,
        "decline_reason": review.decline_reason,
        "loan_status": loan.status,
        "reserved_amount": str(loan.reserved_amount),
    }


def case_lock(review_id: int, *, line: bool = True, program: bool = False) -> Case:
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
    return Case(review, loan, locked_line, case_snapshot(review, loan))


def acting_role_require(user: User) -> None:
    if getattr(user, "role", None) not in ACTING_ROLES:
        raise PermissionDenied("Only risk reviewers and risk approvers act on review cases.")


def case_check_open(review: Review, now: dt.datetime) -> None:
    """The case can still be worked: not closed and not past its deadline."""
    if review.status not in REVIEW_OPEN:
        raise ReviewClosed(f"The case is already {review.status}.")
    if review.expires_at is not None and now >= review.expires_at:
        raise ReviewExpired(f"The case expired at {review.expires_at.isoformat()}.")


def case_check_decidable(case: Case, now: dt.datetime) -> None:
    """Approve and decline apply to an open referral whose loan is still in review."""
    case_check_open(case.review, now)
    if case.review.kind != ReviewKind.REFERRAL:
        raise ReviewKindNotSupported(f"A {case.review.kind} case cannot be approved or declined.")
    if case.loan.status != LoanStatus.IN_REVIEW:
        raise ReviewClosed(f"The loan is already {case.loan.status}.")


def note_clean(note: str) -> str:
    note = (note or "").strip()
    if len(note) > NOTE_MAX_LENGTH:
        raise ValidationFailed(
            "The note is too long.",
            fields={"note": [f"Ensure this field has no more than {NOTE_MAX_LENGTH} characters."]},
        )
    return note


def case_save(
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
    after = case_snapshot(review, loan)
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
