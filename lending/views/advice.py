"""A decision's reasons in words a reader can act on: why, with the numbers, and what to do.

The codes and the numbers are the decision's own: its reasons, and its inputs as
``DecisionInputs.as_json`` writes them (the ``Decision`` row stores the same). Nothing here
decides anything; it says what the engine found. What agents read never names the bank's own
settings (``lending.engine.AGENT_DETAIL``): a referral "needs a review by the bank"; bank staff
read the rule's words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from orders.templatetags.scf_format import money

from ..engine import AGENT_DETAIL
from ..services.quotes import LoanRef
from ..services.terms import largest_order_for
from .words import word
from .words.decisions import REASONS

# What agents read for the reasons whose detail is the bank's (``AGENT_DETAIL``).
AGENT_WORDS: dict[str, Any] = {
    "above_auto_approve_limit": gettext_lazy("Needs a review by the bank."),
    "grade_below_auto_approve": gettext_lazy("Needs a review by the bank."),
    "program_rule_refer": gettext_lazy("Needs a review by the bank."),
    "insufficient_program_limit": gettext_lazy(
        "The program has no room left for this loan right now. Please try again later."
    ),
}


@dataclass(frozen=True)
class Advice:
    """One reason: its code, its words, and the loans to repay first (``agent_overdue``)."""

    code: str
    text: str
    loans: tuple[LoanRef, ...] = ()


def _amount(inputs: Mapping[str, Any], name: str) -> Decimal | None:
    try:
        return Decimal(str(inputs[name]))
    except (KeyError, InvalidOperation):
        return None


def _credit_words(inputs: Mapping[str, Any], advance_rate: Decimal | None) -> str | None:
    available, needed = _amount(inputs, "line_available"), _amount(inputs, "principal")
    minimum = _amount(inputs, "min_principal") or Decimal(0)
    if available is None or needed is None:
        return None
    currency = str(inputs.get("program_currency", ""))
    figures = {"available": money(available, currency), "needed": money(needed, currency)}
    if advance_rate and available >= minimum and available > 0:
        figures["fit"] = money(largest_order_for(available, advance_rate), currency)
        return (
            _(
                "Not enough credit left on the line: %(available)s available, this loan needs "
                "%(needed)s. An order of up to %(fit)s would fit; repaying a loan frees credit."
            )
            % figures
        )
    return (
        _(
            "Not enough credit left on the line: %(available)s available, this loan needs "
            "%(needed)s. Repaying a loan frees credit."
        )
        % figures
    )


def _age_words(inputs: Mapping[str, Any]) -> str | None:
    age, most = inputs.get("order_age_days"), inputs.get("max_order_age_days")
    if age is None or most is None:
        return None
    return _(
        "The order is %(age)s days old; the program finances orders up to %(most)s days old."
    ) % {"age": age, "most": most}


def _overdue_words(inputs: Mapping[str, Any]) -> str | None:
    days = inputs.get("agent_max_dpd")
    if not days:
        return None
    return _("A loan is past due (days past due: %(days)s): repay it to finance again.") % {
        "days": days
    }


def _range_words(code: str, inputs: Mapping[str, Any]) -> str | None:
    currency = str(inputs.get("program_currency", ""))
    needed = _amount(inputs, "principal")
    bound = _amount(inputs, "max_principal" if code == "amount_above_maximum" else "min_principal")
    if needed is None or bound is None:
        return None
    figures = {"needed": money(needed, currency), "bound": money(bound, currency)}
    if code == "amount_above_maximum":
        return _("This loan (%(needed)s) is above the program's maximum of %(bound)s.") % figures
    return _("This loan (%(needed)s) is below the program's minimum of %(bound)s.") % figures


def advise(
    reasons: Iterable[Mapping[str, Any]],
    inputs: Mapping[str, Any] | None,
    *,
    advance_rate: Decimal | None = None,
    to_repay: Sequence[LoanRef] = (),
    staff: bool = False,
) -> list[Advice]:
    """The reasons in words, with the figures from ``inputs`` where they help the agent act:
    the credit available and how large an order would fit, the order's age and the program's
    maximum, the loans to repay. ``staff``: bank staff, who may read the bank's own rules."""
    inputs = inputs or {}
    advice = []
    for reason in reasons:
        code = str(reason.get("code", ""))
        text: str | None = None
        if not staff and code in AGENT_WORDS:
            text = str(AGENT_WORDS[code])
        elif code == "insufficient_credit_line":
            text = _credit_words(inputs, advance_rate)
        elif code == "order_too_old":
            text = _age_words(inputs)
        elif code == "agent_overdue":
            text = _overdue_words(inputs)
        elif code in ("amount_above_maximum", "amount_below_minimum"):
            text = _range_words(code, inputs)
        if text is None:
            fallback = "" if not staff and code in AGENT_DETAIL else str(reason.get("detail", ""))
            text = word(REASONS, code, fallback)
        loans = tuple(to_repay) if code == "agent_overdue" else ()
        advice.append(Advice(code, text, loans))
    return advice
