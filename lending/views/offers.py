"""What each order offers, and why not, in words: the engine's quotes for the portal's pages.

``order_offers`` turns a page's quotes (``loan_quotes``: the engine in quote mode, three
queries) into what each row shows: the principal on offer, or the reasons with their figures
and what to do (``advice.advise``), or the loan that already holds the order. ``advice_for``
does the same for one decision (the quote dialog, a declined click, a loan's page).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from orders.models import SalesOrder, User

from ..selectors.loans import loans_past_due
from ..services.quotes import LoanRef, loan_quotes
from .advice import Advice, advise
from .words import word
from .words.decisions import SETUP_ERRORS


@dataclass(frozen=True)
class Offer:
    """What an order's row says: the quote's outcome, the principal on offer, why not."""

    outcome: str  # approved | in_review | declined | unavailable (no program or line)
    principal: Decimal | None
    currency: str
    advice: list[Advice]
    financed_by: LoanRef | None

    @property
    def offered(self) -> bool:
        """The click would not be refused: approved now, or sent to the bank's review."""
        return self.outcome in ("approved", "in_review")


def order_offers(orders: list[SalesOrder], *, staff: bool = False) -> dict[int, Offer]:
    """Each order's offer, from the engine run in quote mode on the whole page
    (``loan_quotes``: three queries for any page)."""
    offers = {}
    for pk, quote in loan_quotes(orders=orders).items():
        if quote.decision is None or quote.program is None or quote.terms is None:
            advice = [Advice(quote.error_code, word(SETUP_ERRORS, quote.error_code, quote.error))]
            offers[pk] = Offer(quote.outcome, None, "", advice, quote.financed_by)
            continue
        advice = advise(
            quote.decision.reasons,
            quote.decision.inputs.as_json(),
            advance_rate=quote.program.advance_rate,
            to_repay=quote.to_repay,
            staff=staff,
        )
        terms = quote.terms
        offers[pk] = Offer(
            quote.outcome, terms.principal, terms.currency, advice, quote.financed_by
        )
    return offers


def loans_to_repay(agent_id: int | None, tolerated: int) -> tuple[LoanRef, ...]:
    """The agent's loans past the program's tolerance: repaying them lifts ``agent_overdue``."""
    if agent_id is None:
        return ()
    return tuple(
        LoanRef.of(loan) for loan in loans_past_due(agent_ids=[agent_id], more_than=tolerated)
    )


def advice_for(
    user: User,
    reasons: list[dict[str, Any]],
    inputs: dict[str, Any],
    advance_rate: Decimal,
    agent_id: int | None,
) -> list[Advice]:
    """A decision's advice; the loans to repay are read only when the decision names them."""
    repay: tuple[LoanRef, ...] = ()
    if any(r.get("code") == "agent_overdue" for r in reasons):
        repay = loans_to_repay(agent_id, int(inputs.get("max_dpd_tolerated") or 0))
    return advise(
        reasons, inputs, advance_rate=advance_rate, to_repay=repay, staff=user.is_bank_staff
    )
