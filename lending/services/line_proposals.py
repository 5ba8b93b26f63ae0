"""Maker-checker on large line increases: the nightly job queues them, two people approve.

A proposal awaiting approval moves like this::

    awaiting_approval --approve (maker: a risk reviewer or approver)--> awaiting_approval, maker set
    awaiting_approval, maker set --approve (checker: another person, a risk approver)--> approved
    awaiting_approval --reject (either, with a reason)--> rejected
    awaiting_approval --the next night proposes something else--> superseded

The checker's approval applies the proposed limit through ``credit_line_update`` (row lock, check
that the limit is not below outstanding + reserved, audit) in the same transaction. It is refused
when the line was frozen (``line_frozen``) or its limit changed since the proposal
(``proposal_stale``: the formula ran on other figures).

Locking: the line first, then the proposal, the order the nightly job uses (it locks a chunk of
lines, then supersedes their proposals), so the two cannot deadlock; the state is checked after
both locks are held, so two people racing on one proposal see each other's result. Each action
writes its audit row in the same transaction.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from orders.models import Role, User
from scf import clock
from scf.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

from ..locks import line_lock, line_proposal_lock
from ..models import CreditLine, LineProposal, ProposalStatus
from .audit import audit_record
from .lines import credit_line_update
from .review_case import NOTE_MAX_LENGTH, ApproverRoleRequired, LineFrozen, MakerCheckerSameUser

ACTING_ROLES = (Role.RISK_REVIEWER, Role.RISK_APPROVER)


class ProposalClosed(Conflict):
    code = "proposal_closed"


class ProposalStale(Conflict):
    code = "proposal_stale"


def _require_role(user: User) -> None:
    if getattr(user, "role", None) not in ACTING_ROLES:
        raise PermissionDenied("Only risk reviewers and risk approvers act on line proposals.")


def _clean_note(note: str, *, required: bool = False) -> str:
    note = (note or "").strip()
    if required and not note:
        raise ValidationFailed("Give a reason.", fields={"reason": ["This field is required."]})
    if len(note) > NOTE_MAX_LENGTH:
        message = f"Ensure this field has no more than {NOTE_MAX_LENGTH} characters."
        raise ValidationFailed("The note is too long.", fields={"note": [message]})
    return note


def _lock(proposal_id: int) -> tuple[LineProposal, CreditLine]:
    """Lock the proposal's line, then the proposal (inside the caller's transaction)."""
    line_id = (
        LineProposal.objects.filter(pk=proposal_id).values_list("credit_line_id", flat=True).first()
    )
    if line_id is None:
        raise NotFound("No such line proposal.")
    line = line_lock(line_id)
    proposal = line_proposal_lock(proposal_id)
    if proposal.status != ProposalStatus.AWAITING_APPROVAL:
        raise ProposalClosed(f"The proposal is {proposal.status}.")
    return proposal, line


def _snapshot(proposal: LineProposal) -> dict[str, Any]:
    return {
        "status": proposal.status,
        "first_approver": proposal.first_approver_id,
        "second_approver": proposal.second_approver_id,
        "proposed_limit": str(proposal.proposed_limit),
    }


def _save(
    proposal: LineProposal,
    user: User,
    action: str,
    note: str,
    fields: list[str],
    before: dict[str, Any],
) -> None:
    """Append the note, save the changed fields and audit the action."""
    proposal.notes = [
        *proposal.notes,
        {"by": user.get_username(), "at": clock.now().isoformat(), "action": action, "note": note},
    ]
    proposal.save(update_fields=[*fields, "notes"])
    audit_record(
        actor=user,
        action=f"line_proposal.{action}",
        obj=proposal,
        before=before,
        after=_snapshot(proposal),
        note=note,
    )


def _check_checker(proposal: LineProposal, user: User) -> None:
    if proposal.first_approver_id == user.pk:
        raise MakerCheckerSameUser("The second approval must come from another person.")
    if user.role != Role.RISK_APPROVER:
        raise ApproverRoleRequired("The second approval needs a risk approver.")


def _apply(proposal: LineProposal, line: CreditLine, user: User) -> None:
    """The checker's approval: the line must be as the proposal found it, then the limit moves."""
    if line.frozen:
        raise LineFrozen("The agent's credit line is frozen.")
    if line.limit != proposal.current_limit:
        raise ProposalStale(
            f"The limit is {line.limit:.2f} now, not {proposal.current_limit:.2f} as proposed."
        )
    credit_line_update(actor=user, line=line, limit=proposal.proposed_limit)


@transaction.atomic
def line_proposal_approve(*, user: User, proposal_id: int, note: str = "") -> LineProposal:
    """First approval (maker) or second approval (checker, which applies the new limit).

    Locks the line, then the proposal. Raises ``proposal_closed``, ``maker_checker_same_user``,
    ``approver_role_required``, ``line_frozen``, ``proposal_stale`` or ``ValidationFailed``
    (``limit_below_utilisation``, from ``credit_line_update``).
    """
    _require_role(user)
    note = _clean_note(note)
    proposal, line = _lock(proposal_id)
    before, now = _snapshot(proposal), clock.now()
    if proposal.first_approver_id is None:
        proposal.first_approver, proposal.first_approved_at = user, now
        fields = ["first_approver", "first_approved_at"]
        _save(proposal, user, "first_approval", note, fields, before)
        return proposal
    _check_checker(proposal, user)
    _apply(proposal, line, user)
    proposal.second_approver, proposal.decided_by = user, user
    proposal.status, proposal.decided_at, proposal.applied_at = ProposalStatus.APPROVED, now, now
    fields = ["second_approver", "decided_by", "status", "decided_at", "applied_at"]
    _save(proposal, user, "approve", note, fields, before)
    return proposal


@transaction.atomic
def line_proposal_reject(*, user: User, proposal_id: int, reason: str) -> LineProposal:
    """Reject a waiting proposal (the line keeps its limit). Locks the line, then the proposal.

    Raises ``ValidationFailed`` without a reason, ``proposal_closed``.
    """
    _require_role(user)
    reason = _clean_note(reason, required=True)
    proposal, _line = _lock(proposal_id)
    before = _snapshot(proposal)
    proposal.status, proposal.decided_by, proposal.decided_at = (
        ProposalStatus.REJECTED,
        user,
        clock.now(),
    )
    _save(proposal, user, "reject", reason, ["status", "decided_by", "decided_at"], before)
    return proposal
