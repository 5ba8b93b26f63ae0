"""Plain, translatable words for the stable codes the services use (statuses, reasons, rules).

Only words live here: which status or reason applies is always decided by the services. An
unknown code (one added later) falls back to its stored English detail or to the code itself.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

from orders.templatetags.scf_format import money, order_status

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

# What an agent reads for the reviewer's decline reason: the reviewers' own words, except for
# "other", whose explanation is in the reviewer's note (the bank's, not shown to the agent).
AGENT_DECLINE_REASONS: dict[str, Any] = {
    **DECLINE_REASONS,
    "other": _("The bank declined the request after its review. Ask your relationship manager."),
}


def agent_decline_reason(code: str, *, staff: bool = False) -> str:
    """The words of a reviewer's decline reason for an agent (or, ``staff``, for the bank)."""
    return word(DECLINE_REASONS if staff else AGENT_DECLINE_REASONS, code)


# The orders page's sort keys (``orders.selectors.ORDER_SORTS``), in the order offered.
ORDER_SORT: dict[str, Any] = {
    "-date": _("Newest first"),
    "date": _("Oldest first"),
    "-amount": _("Largest amount first"),
    "amount": _("Smallest amount first"),
    "number": _("Order number"),
}

# Why no program can decide an order (``lending.services.finance.NotConfigured`` codes).
SETUP_ERRORS: dict[str, Any] = {
    "no_program": _("No financing program covers this order."),
    "no_credit_line": _("No credit line in this program yet. Ask the bank to open one."),
}

# The engine's rules (lending.engine.RULES), by name.
RULE_NAMES: dict[str, Any] = {
    "order_status": _("Order status"),
    "order_not_financed": _("Order not financed yet"),
    "order_age": _("Order age"),
    "currency": _("Currency"),
    "program_active": _("Program active"),
    "agent_active": _("Agent active"),
    "line_frozen": _("Line not frozen"),
    "agent_overdue": _("No loan past due"),
    "amount_range": _("Amount within the program's range"),
    "line_headroom": _("Credit left on the line"),
    "program_headroom": _("Room left in the program"),
    "auto_approve_limit": _("Automatic approval limit"),
    "auto_approve_grade": _("Automatic approval grade"),
}

# What a rule found, by reason code, from the decision's stored inputs (the engine stores the same
# sentence in English, built from the same inputs: lending.engine).
RULE_DETAILS: dict[str, Any] = {
    "order_cancelled": _("The order was cancelled."),
    "order_not_financeable": _("Order status is %(order_status)s."),
    "order_already_financed": _("The order has a loan."),
    "order_too_old": _(
        "Order is %(order_age_days)s days old; the program allows %(max_order_age_days)s."
    ),
    "currency_mismatch": _(
        "Order is in %(order_currency)s; the program lends in %(program_currency)s."
    ),
    "program_inactive": _("The program is suspended."),
    "agent_inactive": _("Agent status is %(agent_status)s."),
    "line_frozen": _("The credit line is frozen."),
    "agent_overdue": _(
        "A loan is %(agent_max_dpd)s days past due; tolerated: %(max_dpd_tolerated)s."
    ),
    "amount_below_minimum": _("%(principal)s is below the minimum %(min_principal)s."),
    "amount_above_maximum": _("%(principal)s is above the maximum %(max_principal)s."),
    "insufficient_credit_line": _("Needs %(principal)s; %(line_available)s available on the line."),
    "insufficient_program_limit": _(
        "Needs %(principal)s; %(program_available)s available in the program."
    ),
    "above_auto_approve_limit": _(
        "%(principal)s is above the auto-approve limit %(auto_approve_limit)s."
    ),
    "grade_below_auto_approve": _("Grade %(risk_grade)s is below %(auto_approve_grade)s."),
}
PROGRAM_REFERS = _("%(detail)s The program refers this to review.")

# An agent's or a program's status (orders.models.PartyStatus, lending.models.ProgramStatus).
PARTY_STATUS: dict[str, Any] = {
    "active": _("Active"),
    "suspended": _("Suspended"),
    "inactive": _("Inactive"),
}

# The decision's inputs (lending.engine.DecisionInputs), by name.
INPUT_LABELS: dict[str, Any] = {
    "order_id": _("Order id"),
    "order_status": _("Order status"),
    "order_amount": _("Order amount"),
    "order_currency": _("Order currency"),
    "order_date": _("Order date"),
    "order_age_days": _("Order age (days)"),
    "business_date": _("Business date"),
    "already_financed": _("Already financed"),
    "agent_status": _("Agent status"),
    "relationship_active": _("Relationship with the enterprise active"),
    "agent_max_dpd": _("Agent's most days past due"),
    "line_limit": _("Line limit"),
    "line_available": _("Available on the line"),
    "line_frozen": _("Line frozen"),
    "risk_grade": _("Risk grade"),
    "program_status": _("Program status"),
    "program_currency": _("Program currency"),
    "program_available": _("Available in the program"),
    "min_principal": _("Smallest loan"),
    "max_principal": _("Largest loan"),
    "auto_approve_limit": _("Automatic approval limit"),
    "auto_approve_grade": _("Automatic approval grade"),
    "max_order_age_days": _("Oldest order allowed (days)"),
    "max_dpd_tolerated": _("Days past due tolerated"),
    "principal": _("Principal"),
    "refer_rules": _("Rules the program refers"),
}
MONEY_INPUTS = frozenset(
    {
        "order_amount",
        "line_limit",
        "line_available",
        "program_available",
        "min_principal",
        "max_principal",
        "auto_approve_limit",
        "principal",
    }
)

RULE_OUTCOME: dict[str, Any] = {
    "pass": _("Passed"),
    "decline": _("Declines"),
    "refer": _("Refers"),
}


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


def audit_action(code: str) -> str:
    """An audit action in the active language (the code itself for one not listed)."""
    return word(AUDIT_ACTIONS, code)


def input_text(name: str, value: Any, currency: str) -> str:
    """One decision input as shown: amounts with their currency, yes/no, lists joined."""
    if isinstance(value, bool):
        return str(_("Yes") if value else _("No"))
    if name in MONEY_INPUTS and value is not None:
        return money(value, currency) or str(value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "—"
    if name == "order_status":
        return order_status(value)
    if name in ("agent_status", "program_status"):
        return word(PARTY_STATUS, str(value))
    return str(value)


def decision_inputs(inputs: dict[str, Any]) -> list[dict[str, str]]:
    """The decision's stored inputs in words: ``{"code", "label", "value"}`` each."""
    currency = str(inputs.get("program_currency") or "CNY")
    return [
        {"code": name, "label": word(INPUT_LABELS, name), "value": input_text(name, v, currency)}
        for name, v in inputs.items()
    ]


def _detail(code: str, inputs: dict[str, Any]) -> str:
    template = RULE_DETAILS.get(code)
    if template is None:
        return ""
    currency = str(inputs.get("program_currency") or "CNY")
    values = {name: input_text(name, v, currency) for name, v in inputs.items()}
    try:
        return str(template) % values
    except (KeyError, TypeError, ValueError):  # an input this decision did not store
        return ""


def rule_detail(rule: dict[str, Any], inputs: dict[str, Any]) -> str:
    """What a rule found, in the active language (its stored English detail if unknown)."""
    code, detail = str(rule.get("code") or ""), str(rule.get("detail") or "")
    if not detail:
        return ""
    if code == "program_rule_refer":  # stored as "<inner code>: <inner detail> The program ..."
        inner = _detail(detail.split(":", 1)[0], inputs)
        return str(PROGRAM_REFERS) % {"detail": inner} if inner else detail
    return _detail(code, inputs) or detail


def rule_rows(rules: list[dict[str, Any]], inputs: dict[str, Any]) -> list[dict[str, str]]:
    """The decision's rules with their name and detail in words."""
    return [
        {
            "rule": str(rule.get("rule", "")),
            "name": word(RULE_NAMES, str(rule.get("rule", ""))),
            "outcome": str(rule.get("outcome", "")),
            "detail": rule_detail(rule, inputs),
        }
        for rule in rules
    ]


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
