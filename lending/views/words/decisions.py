"""Words for a decision: the engine's reasons, its rules and what they found, its inputs."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

from orders.templatetags.scf_format import money, order_status

from . import word
from .statuses import PARTY_STATUS

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
    "agreement_missing": _("No signed tripartite agreement under this program."),
    "insufficient_margin": _("Not enough free margin lodged for this order."),
    "release_breach_open": _("Goods were shipped beyond what was released."),
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
    "agreement": _("Tripartite agreement signed"),
    "margin": _("Margin lodged"),
    "release_breach": _("No open release breach"),
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
    "agreement_missing": _("No active tripartite agreement."),
    "insufficient_margin": _("Needs %(margin_required)s of margin; %(margin_free)s free."),
    "release_breach_open": _("A release breach is open."),
}
PROGRAM_REFERS = _("%(detail)s The program refers this to review.")

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
    "agreement_active": _("Tripartite agreement signed"),
    "margin_required": _("Margin required"),
    "margin_free": _("Free margin"),
    "release_breach_open": _("Release breach open"),
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
        "margin_required",
        "margin_free",
    }
)

RULE_OUTCOME: dict[str, Any] = {
    "pass": _("Passed"),
    "decline": _("Declines"),
    "refer": _("Refers"),
}


def reason_words(reasons: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Decision reasons (``{"code", "detail"}``) with their plain words added as ``text``."""
    return [
        {
            "code": str(r.get("code", "")),
            "text": word(REASONS, str(r.get("code", "")), str(r.get("detail", ""))),
        }
        for r in reasons
    ]


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


def _flat(inputs: dict[str, Any]) -> dict[str, Any]:
    """The inputs with a tripartite program's own (stored nested) among the rest; none outside
    one."""
    flat = {name: v for name, v in inputs.items() if name != "tripartite"}
    flat.update(inputs.get("tripartite") or {})
    return flat


def decision_inputs(inputs: dict[str, Any]) -> list[dict[str, str]]:
    """The decision's stored inputs in words: ``{"code", "label", "value"}`` each."""
    currency = str(inputs.get("program_currency") or "CNY")
    return [
        {"code": name, "label": word(INPUT_LABELS, name), "value": input_text(name, v, currency)}
        for name, v in _flat(inputs).items()
    ]


def _detail(code: str, inputs: dict[str, Any]) -> str:
    template = RULE_DETAILS.get(code)
    if template is None:
        return ""
    currency = str(inputs.get("program_currency") or "CNY")
    values = {name: input_text(name, v, currency) for name, v in _flat(inputs).items()}
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
