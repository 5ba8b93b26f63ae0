"""The decision engine: small named rules over a snapshot of inputs, each with a stable code.

``decide(inputs)`` runs every rule (so a decision lists all reasons that apply, not the first),
then: any decline -> ``declined``; else any referral -> ``in_review``; else ``approved``.
Rules are pure functions of ``DecisionInputs``; the service that gathers the inputs takes the
locks, so the same inputs always give the same decision. Stored with every decision: the inputs,
each rule's outcome, and ``ENGINE_VERSION``.

A program may mark some rules as "refer" (``Program.refer_rules``): such a rule, when it fails,
sends the request to review with ``program_rule_refer`` instead of declining it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

ENGINE_VERSION = "2026.12.1"

PASS, DECLINE, REFER = "pass", "decline", "refer"
FINANCEABLE_STATUSES = ("confirmed", "shipped")
REFERABLE_RULES = ("order_too_old", "agent_overdue", "amount_above_maximum")

REASON_TEXT = {
    "order_not_financeable": "The order's status does not allow financing.",
    "order_cancelled": "The order has been cancelled.",
    "order_too_old": "The order is older than the program allows.",
    "order_date_in_future": "The order is dated in the future.",
    "order_already_financed": "This order already has a loan.",
    "agent_inactive": "The agent is not active with this enterprise.",
    "line_frozen": "The credit line is frozen.",
    "agent_overdue": "The agent has a loan past due beyond the program's tolerance.",
    "amount_below_minimum": "The loan would be below the program's minimum.",
    "amount_above_maximum": "The loan would be above the program's maximum.",
    "insufficient_credit_line": "Not enough credit left on the agent's line.",
    "insufficient_program_limit": "Not enough room left in the program.",
    "currency_mismatch": "The order's currency differs from the program's.",
    "program_inactive": "The program is not accepting new loans.",
    "above_auto_approve_limit": "Above the amount the program approves automatically.",
    "grade_below_auto_approve": "The agent's risk grade is below automatic approval.",
    "program_rule_refer": "The program sends this case to review.",
    "agreement_missing": "The agent has no signed tripartite agreement under this program.",
    "insufficient_margin": "Not enough free margin lodged for this order.",
    "release_breach_open": "Goods were shipped beyond what was released: to review.",
}

# What an agent is told instead of the stored detail, for the reasons whose detail names the
# bank's own settings: the auto-approve limit and grade, the rules a program refers, the
# program's headroom. The programs API hides those from agents, and a reason must not give them
# away (an agent could size its orders just below the limit). The codes stay as they are; bank
# staff read the stored detail.
AGENT_DETAIL = {
    "above_auto_approve_limit": "Needs a review by the bank.",
    "grade_below_auto_approve": "Needs a review by the bank.",
    "program_rule_refer": "Needs a review by the bank.",
    "insufficient_program_limit": "The program has no room left for this loan right now.",
}


def reasons_for_agent(reasons: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """A decision's reasons as an agent may read them: same codes, no bank thresholds."""
    return [
        {"code": str(r["code"]), "detail": AGENT_DETAIL.get(str(r["code"]), str(r["detail"]))}
        for r in reasons
    ]


@dataclass(frozen=True)
class TripartiteInputs:
    """A tripartite program's facts: the agent's agreement, the margin (and security deposit)
    the order needs and what the agent has free, an open release breach."""

    agreement_active: bool
    margin_required: Decimal
    margin_free: Decimal
    release_breach_open: bool = False

    def as_json(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class DecisionInputs:
    order_id: int
    order_status: str
    order_amount: Decimal
    order_currency: str
    order_date: dt.date
    business_date: dt.date
    already_financed: bool
    agent_status: str
    relationship_active: bool
    agent_max_dpd: int
    line_limit: Decimal
    line_available: Decimal
    line_frozen: bool
    risk_grade: str
    program_status: str
    program_currency: str
    program_available: Decimal
    min_principal: Decimal
    max_principal: Decimal
    auto_approve_limit: Decimal
    auto_approve_grade: str
    max_order_age_days: int
    # Days an order may be dated after the business date (time zones, clocks): the feed's.
    max_order_future_days: int
    max_dpd_tolerated: int
    principal: Decimal
    refer_rules: tuple[str, ...] = field(default=())
    # Only under a program with tripartite terms enabled; its rules run only then.
    tripartite: TripartiteInputs | None = None

    @property
    def order_age_days(self) -> int:
        return (self.business_date - self.order_date).days

    def as_json(self) -> dict[str, Any]:
        # Every field is a scalar or a tuple of strings: no deep copy (``asdict``) needed.
        data = {name: _jsonable(getattr(self, name)) for name in _INPUT_NAMES}
        data["tripartite"] = self.tripartite.as_json() if self.tripartite is not None else None
        data["order_age_days"] = self.order_age_days
        return data


_INPUT_NAMES = tuple(f.name for f in fields(DecisionInputs) if f.name != "tripartite")


def _jsonable(value: object) -> object:
    if isinstance(value, Decimal):
        return f"{value:.2f}" if value == value.quantize(Decimal("0.01")) else str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


@dataclass(frozen=True)
class RuleResult:
    rule: str
    outcome: str  # pass | decline | refer
    code: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class DecisionResult:
    outcome: str  # approved | in_review | declined
    reasons: list[dict[str, str]]
    rules: list[RuleResult]
    inputs: DecisionInputs

    @property
    def reserves_credit(self) -> bool:
        return self.outcome in ("approved", "in_review")

    def rules_json(self) -> list[dict[str, Any]]:
        return [
            {"rule": r.rule, "outcome": r.outcome, "code": r.code, "detail": r.detail}
            for r in self.rules
        ]


Rule = Callable[[DecisionInputs], RuleResult]


def _ok(rule: str) -> RuleResult:
    return RuleResult(rule, PASS)


def _no(rule: str, code: str, detail: str) -> RuleResult:
    return RuleResult(rule, DECLINE, code, detail)


def rule_order_status(i: DecisionInputs) -> RuleResult:
    if i.order_status == "cancelled":
        return _no("order_status", "order_cancelled", "The order was cancelled.")
    if i.order_status not in FINANCEABLE_STATUSES:
        return _no("order_status", "order_not_financeable", f"Order status is {i.order_status}.")
    return _ok("order_status")


def rule_order_not_financed(i: DecisionInputs) -> RuleResult:
    if i.already_financed:
        return _no("order_not_financed", "order_already_financed", "The order has a loan.")
    return _ok("order_not_financed")


def rule_order_age(i: DecisionInputs) -> RuleResult:
    if -i.order_age_days > i.max_order_future_days:
        return _no(
            "order_age",
            "order_date_in_future",
            f"Order is dated {i.order_date}, {-i.order_age_days} days after the business date "
            f"{i.business_date}; at most {i.max_order_future_days} allowed.",
        )
    if i.order_age_days > i.max_order_age_days:
        return _no(
            "order_age",
            "order_too_old",
            f"Order is {i.order_age_days} days old; the program allows {i.max_order_age_days}.",
        )
    return _ok("order_age")


def rule_currency(i: DecisionInputs) -> RuleResult:
    if i.order_currency != i.program_currency:
        return _no(
            "currency",
            "currency_mismatch",
            f"Order is in {i.order_currency}; the program lends in {i.program_currency}.",
        )
    return _ok("currency")


def rule_program_active(i: DecisionInputs) -> RuleResult:
    if i.program_status != "active":
        return _no("program_active", "program_inactive", "The program is suspended.")
    return _ok("program_active")


def rule_agent_active(i: DecisionInputs) -> RuleResult:
    if i.agent_status != "active" or not i.relationship_active:
        return _no("agent_active", "agent_inactive", f"Agent status is {i.agent_status}.")
    return _ok("agent_active")


def rule_line_frozen(i: DecisionInputs) -> RuleResult:
    if i.line_frozen:
        return _no("line_frozen", "line_frozen", "The credit line is frozen.")
    return _ok("line_frozen")


def rule_agent_overdue(i: DecisionInputs) -> RuleResult:
    if i.agent_max_dpd > i.max_dpd_tolerated:
        return _no(
            "agent_overdue",
            "agent_overdue",
            f"A loan is {i.agent_max_dpd} days past due; tolerated: {i.max_dpd_tolerated}.",
        )
    return _ok("agent_overdue")


def rule_amount_range(i: DecisionInputs) -> RuleResult:
    if i.principal < i.min_principal:
        return _no(
            "amount_range", "amount_below_minimum", f"{i.principal} < minimum {i.min_principal}."
        )
    if i.principal > i.max_principal:
        return _no(
            "amount_range", "amount_above_maximum", f"{i.principal} > maximum {i.max_principal}."
        )
    return _ok("amount_range")


def rule_line_headroom(i: DecisionInputs) -> RuleResult:
    if i.principal > i.line_available:
        return _no(
            "line_headroom",
            "insufficient_credit_line",
            f"Needs {i.principal}; {i.line_available} available on the line.",
        )
    return _ok("line_headroom")


def rule_program_headroom(i: DecisionInputs) -> RuleResult:
    if i.principal > i.program_available:
        return _no(
            "program_headroom",
            "insufficient_program_limit",
            f"Needs {i.principal}; {i.program_available} available in the program.",
        )
    return _ok("program_headroom")


def rule_auto_approve_limit(i: DecisionInputs) -> RuleResult:
    if i.principal > i.auto_approve_limit:
        return RuleResult(
            "auto_approve_limit",
            REFER,
            "above_auto_approve_limit",
            f"{i.principal} is above the auto-approve limit {i.auto_approve_limit}.",
        )
    return _ok("auto_approve_limit")


def rule_auto_approve_grade(i: DecisionInputs) -> RuleResult:
    if i.risk_grade > i.auto_approve_grade:  # grades are letters, A best
        return RuleResult(
            "auto_approve_grade",
            REFER,
            "grade_below_auto_approve",
            f"Grade {i.risk_grade} is below {i.auto_approve_grade}.",
        )
    return _ok("auto_approve_grade")


RULES: tuple[Rule, ...] = (
    rule_order_status,
    rule_order_not_financed,
    rule_order_age,
    rule_currency,
    rule_program_active,
    rule_agent_active,
    rule_line_frozen,
    rule_agent_overdue,
    rule_amount_range,
    rule_line_headroom,
    rule_program_headroom,
    rule_auto_approve_limit,
    rule_auto_approve_grade,
)


def rule_agreement(i: DecisionInputs) -> RuleResult:
    if i.tripartite is not None and not i.tripartite.agreement_active:
        return _no("agreement", "agreement_missing", "No active tripartite agreement.")
    return _ok("agreement")


def rule_margin(i: DecisionInputs) -> RuleResult:
    t = i.tripartite
    if t is not None and t.margin_free < t.margin_required:
        missing = t.margin_required - t.margin_free
        return _no(
            "margin",
            "insufficient_margin",
            f"Needs {t.margin_required} of margin; {t.margin_free} free, {missing} missing.",
        )
    return _ok("margin")


def rule_release_breach(i: DecisionInputs) -> RuleResult:
    if i.tripartite is not None and i.tripartite.release_breach_open:
        return RuleResult(
            "release_breach", REFER, "release_breach_open", "A release breach is open."
        )
    return _ok("release_breach")


TRIPARTITE_RULES: tuple[Rule, ...] = (rule_agreement, rule_margin, rule_release_breach)


def _apply_program_referrals(result: RuleResult, refer_rules: tuple[str, ...]) -> RuleResult:
    if result.outcome == DECLINE and result.code in refer_rules and result.code in REFERABLE_RULES:
        return RuleResult(
            result.rule,
            REFER,
            "program_rule_refer",
            f"{result.code}: {result.detail} The program refers this to review.",
        )
    return result


def decide(inputs: DecisionInputs) -> DecisionResult:
    rules = RULES if inputs.tripartite is None else RULES + TRIPARTITE_RULES
    results = [_apply_program_referrals(rule(inputs), inputs.refer_rules) for rule in rules]
    declines = [r for r in results if r.outcome == DECLINE]
    refers = [r for r in results if r.outcome == REFER]
    if declines:
        outcome, failing = "declined", declines
    elif refers:
        outcome, failing = "in_review", refers
    else:
        outcome, failing = "approved", []
    reasons = [{"code": str(r.code), "detail": r.detail} for r in failing]
    return DecisionResult(outcome, reasons, results, inputs)
