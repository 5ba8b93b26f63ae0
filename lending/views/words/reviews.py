"""Words for the review queue: decline reasons, what a case note records, refusals."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

from . import word

# The review service's decline reasons (lending.services.reviews.DECLINE_REASONS).
DECLINE_REASONS: dict[str, Any] = {
    "insufficient_documents": _("The documents do not support the request."),
    "suspected_fraud": _("The request looks fraudulent."),
    "credit_risk": _("The credit risk is too high for this request."),
    "agent_request": _("The agent withdrew the request."),
    "other": _("Another reason (explain in the note)."),
}

# What an agent reads for the reviewer's decline reason: the reviewers' own words, except for
# "other", whose explanation is in the reviewer's note (the bank's, not shown to the agent).
AGENT_DECLINE_REASONS: dict[str, Any] = {
    **DECLINE_REASONS,
    "other": _("The bank declined the request after its review. Ask your relationship manager."),
}


def agent_decline_reason(code: str, *, staff: bool = False) -> str:
    """The words of a reviewer's decline reason for an agent (or, ``staff``, for the bank)."""
    return word(DECLINE_REASONS if staff else AGENT_DECLINE_REASONS, code)


# What a case note records (the ``action`` of Review.notes).
NOTE_ACTIONS: dict[str, Any] = {
    "open": _("Opened"),
    "claim": _("Claimed"),
    "first_approval": _("First approval"),
    "second_approval": _("Second approval"),
    "approve": _("Approved"),
    "decline": _("Declined"),
    "close": _("Closed"),
    "expire": _("Expired"),
    "line_freeze": _("Line frozen"),
    "line_unfreeze": _("Line unfrozen"),
}


# Refusals of the review and credit-line services, by their stable codes.
ACTION_ERRORS: dict[str, Any] = {
    "already_claimed": _("Another reviewer has claimed this case."),
    "not_claimed": _("Claim the case before deciding it."),
    "maker_checker_same_user": _("The second approval must come from another person."),
    "approver_role_required": _("The second approval needs a risk approver."),
    "line_frozen": _("The agent's credit line is frozen."),
    "review_closed": _("This case is already closed."),
    "review_expired": _("This case has expired."),
    "review_kind_not_supported": _("This kind of case cannot be approved or declined here."),
    "line_already_frozen": _("The line is already frozen."),
    "line_already_unfrozen": _("The line is not frozen."),
    "permission_denied": _("Your role does not allow this."),
    "release_exceeds_paid": _("That is more than the agent has paid for and not yet released."),
    "no_goods_hold": _("This loan holds no goods."),
    "claim_raised": _("A guarantee claim is raised on this loan: its goods are held for it."),
    "claim_state": _("The claim is no longer in a state that allows this."),
}


def error_words(code: str, detail: str) -> str:
    """A service refusal in the active language (its English detail for an unknown code)."""
    return word(ACTION_ERRORS, code, detail)
