"""Plain, translatable words for the stable codes the services use (statuses, reasons, rules).

Only words live here: which status or reason applies is always decided by the services. An
unknown code (one added later) falls back to its stored English detail or to the code itself.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

LOAN_STATUS: dict[str, Any] = {
    "declined": _("Declined"),
    "in_review": _("In review"),
    "approved": _("Approved"),
    "expired": _("Expired"),
    "disbursing": _("Paying out"),
    "disbursement_failed": _("Payment failed"),
    "active": _("Active"),
    "overdue": _("Overdue"),
    "repaid": _("Repaid"),
    "written_off": _("Written off"),
}

REVIEW_STATUS: dict[str, Any] = {
    "open": _("Open"),
    "claimed": _("Claimed"),
    "awaiting_second_approval": _("Awaiting second approval"),
    "approved": _("Approved"),
    "declined": _("Declined"),
    "expired": _("Expired"),
    "closed": _("Closed"),
}

REVIEW_KIND: dict[str, Any] = {
    "referral": _("Referred request"),
    "disbursement_failed": _("Failed payment"),
    "accelerated": _("Accelerated loan"),
}

DISBURSEMENT_STATUS: dict[str, Any] = {
    "pending": _("Pending"),
    "sent": _("Sent to the bank"),
    "settled": _("Paid"),
    "failed": _("Failed"),
}

ACCOUNT: dict[str, Any] = {
    "settlement": _("Settlement (bank cash)"),
    "principal_receivable": _("Principal receivable"),
    "interest_receivable": _("Interest receivable"),
    "penalty_receivable": _("Penalty receivable"),
    "agent_overpayments": _("Agent overpayments"),
    "interest_income": _("Interest income"),
    "penalty_income": _("Penalty income"),
    "credit_losses": _("Credit losses"),
}

ENTRY_KIND: dict[str, Any] = {
    "disbursement": _("Disbursement"),
    "interest_accrual": _("Interest accrual"),
    "penalty_accrual": _("Penalty accrual"),
    "repayment": _("Repayment"),
    "overpayment_refund": _("Overpayment refund"),
    "write_off": _("Write-off"),
    "reversal": _("Reversal"),
}

# The engine's reason codes (lending.engine.REASON_TEXT), in words an agent understands.
REASONS: dict[str, Any] = {
    "order_not_financeable": _("This order's status does not allow financing yet."),
    "order_cancelled": _("The order has been cancelled."),
    "order_too_old": _("The order is older than the program allows."),
    "order_date_in_future": _("The order is dated in the future."),
    "order_already_financed": _("This order already has a loan."),
    "agent_inactive": _("Your company is not active with this enterprise."),
    "line_frozen": _("Your credit line is frozen. Please contact the bank."),
    "agent_overdue": _("You have a loan that is past due. Repay it first."),
    "amount_below_minimum": _("The loan would be below the program's minimum."),
    "amount_above_maximum": _("The loan would be above the program's maximum."),
    "insufficient_credit_line": _("Not enough credit left on your line."),
    "insufficient_program_limit": _("The program has no room left right now."),
    "currency_mismatch": _("The order's currency differs from the program's."),
    "program_inactive": _("The program is not accepting new loans."),
    "above_auto_approve_limit": _("Above the amount approved automatically."),
    "grade_below_auto_approve": _("The risk grade needs a person to review it."),
    "program_rule_refer": _("The program sends this case to a reviewer."),
}

# The review service's decline reasons (lending.services.reviews.DECLINE_REASONS).
DECLINE_REASONS: dict[str, Any] = {
    "insufficient_documents": _("The documents do not support the request."),
    "suspected_fraud": _("The request looks fraudulent."),
    "credit_risk": _("The credit risk is too high for this request."),
    "agent_request": _("The agent withdrew the request."),
    "other": _("Another reason (explain in the note)."),
}

RULE_OUTCOME: dict[str, Any] = {
    "pass": _("Passed"),
    "decline": _("Declines"),
    "refer": _("Refers"),
}


def word(table: dict[str, Any], code: str, fallback: str = "") -> str:
    """The words for ``code`` in the active language, else ``fallback``, else the code."""
    found = table.get(code)
    return str(found) if found is not None else (fallback or code)


def reason_words(reasons: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Decision reasons (``{"code", "detail"}``) with their plain words added as ``text``."""
    return [
        {
            "code": str(r.get("code", "")),
            "text": word(REASONS, str(r.get("code", "")), str(r.get("detail", ""))),
        }
        for r in reasons
    ]


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
}


def error_words(code: str, detail: str) -> str:
    """A service refusal in the active language (its English detail for an unknown code)."""
    return word(ACTION_ERRORS, code, detail)
