"""Words for statuses and other short codes: loans, reviews, payments, accounts, parties."""

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
    "bought_back": _("Bought back"),
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
    "claim_dispute": _("Disputed guarantee claim"),
    "claim_escalated": _("Guarantee claim unpaid past its window"),
    "cap_exhausted": _("Guarantee cap exhausted"),
}

CLAIM_STATUS: dict[str, Any] = {
    "raised": _("Raised"),
    "accepted": _("Accepted"),
    "disputed": _("Disputed"),
    "partly_paid": _("Partly paid"),
    "paid": _("Paid"),
    "escalated": _("Escalated"),
    "cap_exhausted": _("Cap exhausted"),
}

HOLD_STATUS: dict[str, Any] = {
    "held": _("Held"),
    "partly_released": _("Partly released"),
    "released": _("Released"),
    "transferred": _("Transferred to the core enterprise"),
}

RELEASE_STATUS: dict[str, Any] = {
    "authorised": _("Authorised"),
    "refused": _("Refused"),
}

BREACH_STATUS: dict[str, Any] = {
    "open": _("Open"),
    "resolved": _("Resolved"),
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

# An agent's or a program's status (orders.models.PartyStatus, lending.models.ProgramStatus).
PARTY_STATUS: dict[str, Any] = {
    "active": _("Active"),
    "suspended": _("Suspended"),
    "inactive": _("Inactive"),
}

# The orders page's sort keys (``orders.selectors.ORDER_SORTS``), in the order offered.
ORDER_SORT: dict[str, Any] = {
    "-date": _("Newest first"),
    "date": _("Oldest first"),
    "-amount": _("Largest amount first"),
    "amount": _("Smallest amount first"),
    "number": _("Order number"),
}
