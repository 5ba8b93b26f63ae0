"""Words for the audit trail: its actions and the keys of a change."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

from . import word
from .decisions import reason_words
from .reviews import DECLINE_REASONS
from .statuses import LOAN_STATUS, REVIEW_STATUS

# The audit trail's actions (lending.services: audit_record's ``action``); add new ones here.
AUDIT_ACTIONS: dict[str, Any] = {
    "loan.approved": _("Loan approved"),
    "loan.in_review": _("Loan referred to review"),
    "loan.declined": _("Loan declined"),
    "loan.expired": _("Loan request expired"),
    "loan.disbursing": _("Payment sent to the bank"),
    "loan.disbursed": _("Loan paid out"),
    "loan.disbursement_failed": _("Payment failed"),
    "loan.accelerated": _("Loan made due at once"),
    "loan.order_cancelled": _("Order cancelled during the payment"),
    "review.claim": _("Case claimed"),
    "review.first_approval": _("Case: first approval"),
    "review.second_approval": _("Case: second approval"),
    "review.approve": _("Case approved"),
    "review.decline": _("Case declined"),
    "review.close": _("Case closed"),
    "review.expire": _("Case expired"),
    "review.line_freeze": _("Line frozen from the case"),
    "review.line_unfreeze": _("Line unfrozen from the case"),
    "credit_line.create": _("Credit line created"),
    "credit_line.update": _("Credit line changed"),
    "credit_line.freeze": _("Credit line frozen"),
    "credit_line.unfreeze": _("Credit line unfrozen"),
    "program.create": _("Program created"),
    "program.update": _("Program changed"),
    "repayment_recorded": _("Repayment recorded"),
    "cob_run": _("Close of business run"),
    "credit_model.train": _("Credit model trained"),
    "credit_model.promote": _("Credit model promoted"),
    "line_proposal.queue": _("Limit proposal queued"),
    "line_proposal.first_approval": _("Limit proposal: first approval"),
    "line_proposal.approve": _("Limit proposal approved"),
    "line_proposal.reject": _("Limit proposal rejected"),
}

# The keys of an audit row's change (its ``after``), by name; others show as stored.
CHANGE_KEYS: dict[str, Any] = {
    "status": _("Status"),
    "loan_status": _("Loan status"),
    "claimed_by": _("Claimed by"),
    "first_approver": _("First approval"),
    "second_approver": _("Second approval"),
    "decided_by": _("Decided by"),
    "decline_reason": _("Decline reason"),
    "reserved_amount": _("Reserved"),
    "reserved": _("Reserved"),
    "principal": _("Principal"),
    "reasons": _("Reasons"),
    "frozen": _("Frozen"),
    "frozen_reason": _("Frozen because"),
    "limit": _("Limit"),
    "risk_grade": _("Risk grade"),
    "review": _("Case"),
    "outstanding_principal": _("Outstanding"),
    "due_date": _("Due date"),
    "value_date": _("Value date"),
}


def audit_action(code: str) -> str:
    """An audit action in the active language (the code itself for one not listed)."""
    return word(AUDIT_ACTIONS, code)


def change_text(key: str, value: Any) -> str:
    """One entry of an audit row's change in words (codes it knows, yes/no, reasons)."""
    label = word(CHANGE_KEYS, key)
    if value is None or value == "":
        text = "—"
    elif isinstance(value, bool):
        text = str(_("Yes") if value else _("No"))
    elif key == "reasons" and isinstance(value, list):
        text = "; ".join(r["text"] for r in reason_words([r for r in value if isinstance(r, dict)]))
    elif key in ("status", "loan_status"):
        text = word(REVIEW_STATUS, str(value), word(LOAN_STATUS, str(value)))
    elif key == "decline_reason":
        text = word(DECLINE_REASONS, str(value))
    else:
        text = str(value)
    return f"{label}: {text}"
