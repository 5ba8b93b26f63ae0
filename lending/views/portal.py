"""The agent portal: credit line, orders with what is on offer, the finance flow, loans.

Thin pages over the same reads and writes as the API:

- orders come from ``order_list_for_lending`` (search by number, dates, status, sort); what each
  row offers is the engine run in quote mode on the whole page (``loan_quotes``, three queries):
  "Finance this order" only where the click would not be refused, otherwise why, with the
  figures, and a financed order links to its loan;
- the quote is ``loan_quote``; with programs of several banks it lists each bank's offer, and the
  agent finances with the one it chooses (the form sends its ``program``); **Finance this order** is ``loan_finance_once``, the same call
  with the same scope and fingerprint as ``POST /api/v1/orders/{id}/finance/``. The
  quote carries a fresh Idempotency-Key, sent as a header by htmx (and as a form field without
  JavaScript), so a double click, a retry or a second tab replays the first reply and never
  makes a second loan;
- a refusal says what the agent can do (``advice.advise``: how large an order fits, which loan
  to repay), never the bank's own thresholds;
- loans come from ``loan_list`` / ``loan_get`` (another agent's loan is a 404) and the schedule
  from ``loan_schedule``; a loan nothing was paid out for (declined, in review, expired, failed)
  has no schedule and no repayment instructions, and a declined one gives the bank's reason.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from orders.models import OrderStatus, Role, User
from orders.selectors import ORDER_SORTS
from orders.views import BANK_STAFF, role_required
from scf.errors import ApplicationError, NotFound
from scf.throttling import RateLimited

from ..models import AuditLog, Loan, LoanStatus
from ..replies import loan_schedule
from ..selectors.audit import object_audit
from ..selectors.credit import credit_line_list
from ..selectors.ledger import loan_journal_lines
from ..selectors.loans import (
    disbursement_get,
    loan_get,
    loan_list,
    order_list_for_lending,
    repayment_list,
)
from ..selectors.programs import repayment_account
from ..selectors.reviews import referral_decline_get
from ..services.finance import Quote, loan_finance_once, loan_quote
from ..services.idempotency import MAX_KEY_LENGTH, StoredReply
from .advice import Advice, advise
from .common import choice, day_param, page_of, query_without_page, rate_limited, web_user
from .offers import advice_for, order_offers
from .words import word
from .words.decisions import REASONS as REASON_WORDS
from .words.decisions import SETUP_ERRORS
from .words.reviews import agent_decline_reason
from .words.statuses import ORDER_SORT

EVERYONE = (Role.AGENT, Role.ENTERPRISE_ADMIN, *BANK_STAFF)
RECENT = 5


@require_GET
@role_required(*EVERYONE)
def home(request: HttpRequest) -> HttpResponse:
    """Each role's home: the portal for agents, the dashboard or the review queue for others."""
    role = web_user(request).role
    if role in (Role.RISK_REVIEWER, Role.RISK_APPROVER):
        return redirect("web:reviews")
    if role != Role.AGENT:
        return redirect("web:dashboard")
    return portal(request)


def portal(request: HttpRequest) -> HttpResponse:
    user = web_user(request)
    lines = credit_line_list(user=user)
    orders = list(order_list_for_lending(user=user, financeable=True)[:RECENT])
    context = {
        "lines": lines,
        "orders": orders,
        "offers": order_offers(orders, staff=user.is_bank_staff),
        "loans": list(loan_list(user=user)[:RECENT]),
    }
    return render(request, "lending/portal.html", context)


def _order_filters(request: HttpRequest) -> dict[str, Any]:
    """The orders page's filters, each ignored when it does not parse."""
    sort = request.GET.get("sort", "")
    return {
        "status": choice(request, "status", OrderStatus.values),
        "search": request.GET.get("q", "").strip()[:64],
        "date_from": day_param(request, "from"),
        "date_to": day_param(request, "to"),
        "sort": sort if sort in ORDER_SORTS else "-date",
    }


@require_GET
@role_required(*EVERYONE)
def order_list(request: HttpRequest) -> HttpResponse:
    """Orders the user may see: search by number, dates, status, "financeable only", sorted."""
    user = web_user(request)
    filters = _order_filters(request)
    financeable = request.GET.get("financeable") == "1"
    orders = order_list_for_lending(user=user, financeable=financeable or None, **filters)
    page = page_of(request, orders)
    rows = list(page.object_list)
    context = {
        "page": page,
        "rows": rows,
        "offers": order_offers(rows, staff=user.is_bank_staff),
        "filters": filters,
        "financeable": financeable,
        "statuses": OrderStatus.values,
        "sorts": ORDER_SORT,
        "query": query_without_page(request),
    }
    template = "lending/_order_table.html" if request.htmx else "lending/orders.html"  # type: ignore[attr-defined]
    return render(request, template, context)


def _partial_or_page(request: HttpRequest, partial: str, context: dict[str, Any]) -> HttpResponse:
    """htmx gets the fragment; a plain request (no JavaScript) the whole page around it."""
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, partial, context)
    return render(request, "lending/finance_page.html", {**context, "partial": partial})


@dataclass(frozen=True)
class QuoteOffer:
    """One program's offer in the quote dialog, with its own Idempotency-Key: choosing another
    bank's offer is another request, not a replay of this one."""

    quote: Quote
    idempotency_key: str


OUTCOME_RANK = {"approved": 0, "in_review": 1, "declined": 2}


def _best_outcome(offers: list[QuoteOffer]) -> str:
    """What the dialog leads with when banks disagree: the best decision on offer."""
    return min((o.quote.decision.outcome for o in offers), key=OUTCOME_RANK.__getitem__)


@require_GET
@role_required(Role.AGENT)
def order_quote(request: HttpRequest, order_id: int) -> HttpResponse:
    """The quote for one of the agent's orders, with a fresh Idempotency-Key for the confirm.
    A quote the engine would decline says why and what to do, and offers only "Close"."""
    user = web_user(request)
    try:
        quote = loan_quote(user=user, order_id=order_id)
    except RateLimited as exc:
        return rate_limited(request, exc)
    except NotFound:
        raise Http404 from None
    except ApplicationError as exc:
        error = word(SETUP_ERRORS, exc.code, exc.detail)
        return _partial_or_page(
            request, "lending/_finance_error.html", {"order_id": order_id, "error": error}
        )
    decision = quote.decision
    offers = [QuoteOffer(offer, uuid.uuid4().hex) for offer in quote.offers]
    context = {
        "quote": quote,
        "order": quote.order,
        "terms": quote.terms,
        "offers": offers,
        "expected": _best_outcome(offers) if offers else decision.outcome,
        "advice": advice_for(
            user,
            decision.reasons,
            decision.inputs.as_json(),
            quote.program.advance_rate,
            user.agent_id,
        ),
        "idempotency_key": uuid.uuid4().hex,
    }
    return _partial_or_page(request, "lending/_quote.html", context)


@dataclass(frozen=True)
class FinanceOutcome:
    """What the page shows after the click, read from the (possibly replayed) stored reply."""

    status: int
    outcome: str = ""
    loan_id: int | None = None
    reference: str = ""
    principal: Decimal | None = None
    currency: str = ""
    due_date: dt.date | None = None
    advice: tuple[Advice, ...] = ()
    error_code: str = ""
    error: str = ""

    @classmethod
    def of(cls, reply: StoredReply) -> FinanceOutcome:
        body = reply.body
        if reply.status != 201:
            code = str(body.get("code", ""))
            return cls(
                reply.status, error_code=code, error=word(REASON_WORDS, code, body["detail"])
            )
        loan, decision = body["loan"], body["decision"]
        return cls(
            reply.status,
            outcome=decision["outcome"],
            loan_id=loan["id"],
            reference=loan["reference"],
            principal=Decimal(loan["principal"]),
            currency=loan["currency"],
            due_date=dt.date.fromisoformat(loan["due_date"]),
            advice=tuple(advise(decision["reasons"], None)),
        )


@require_POST
@role_required(Role.AGENT)
def order_finance(request: HttpRequest, order_id: int) -> HttpResponse:
    """Finance this order: the outcome in place (approved, in review, or declined with reasons
    and what to do)."""
    user = web_user(request)
    key = (
        request.headers.get("Idempotency-Key") or request.POST.get("idempotency_key", "")
    ).strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        result = FinanceOutcome(
            400, error=_("The page was out of date. Please ask for a new quote.")
        )
    else:
        try:
            program = request.POST.get("program", "")
            body = {"program": program} if program else {}
            reply = loan_finance_once(user=user, order_id=order_id, key=key, body=body)
            result = FinanceOutcome.of(reply)
        except RateLimited as exc:
            return rate_limited(request, exc)
        except ApplicationError as exc:  # the key was used for another request
            result = FinanceOutcome(exc.status_code, error_code=exc.code, error=exc.detail)
    if result.outcome == "declined" and result.loan_id is not None:
        result = _with_figures(user, result)
    context = {"order_id": order_id, "result": result}
    return _partial_or_page(request, "lending/_finance_result.html", context)


def _with_figures(user: User, result: FinanceOutcome) -> FinanceOutcome:
    """A declined click's advice with the figures its decision stored (the reply has none)."""
    loan = loan_get(user=user, loan_id=result.loan_id or 0)
    decision = getattr(loan, "decision", None) if loan is not None else None
    if loan is None or decision is None:
        return result
    advice = advice_for(user, decision.reasons, decision.inputs, loan.advance_rate, loan.agent_id)
    return replace(result, advice=tuple(advice))


@require_GET
@role_required(*EVERYONE)
def loans(request: HttpRequest) -> HttpResponse:
    status = choice(request, "status", LoanStatus.values)
    page = page_of(request, loan_list(user=web_user(request), status=status))
    context = {
        "page": page,
        "status": status or "",
        "statuses": LoanStatus.values,
        "query": query_without_page(request),
    }
    return render(request, "lending/loans.html", context)


# Nothing was paid out for these, and nothing is owed: no schedule, no repayment instructions.
NOT_PAID_OUT = (
    LoanStatus.DECLINED,
    LoanStatus.IN_REVIEW,
    LoanStatus.EXPIRED,
    LoanStatus.DISBURSEMENT_FAILED,
)


@require_GET
@role_required(*EVERYONE)
def loan_detail(request: HttpRequest, loan_id: int) -> HttpResponse:
    """Schedule, balances, how to repay, and what happened so far. A loan not yours is a 404.
    A loan nothing was paid out for shows why instead: a declined one the bank's reason."""
    user = web_user(request)
    loan = loan_get(user=user, loan_id=loan_id)
    if loan is None:
        raise Http404
    bank = loan.program.bank
    paid_out = loan.status not in NOT_PAID_OUT
    decision = getattr(loan, "decision", None)
    context = {
        "loan": loan,
        "bank": bank,
        "paid_out": paid_out,
        "repay_account": repayment_account(loan.program),
        "schedule": loan_schedule(loan) if paid_out else [],
        "advice": _loan_advice(user, loan, decision) if decision is not None else [],
        "bank_decline": _bank_decline(loan, staff=user.is_bank_staff),
        "repayments": list(repayment_list(loan=loan)),
        "disbursement": disbursement_get(loan=loan),
        "journal": list(loan_journal_lines(loan=loan)),
        "audit": _loan_audit(loan) if user.is_bank_staff else [],
        "owes": loan.status in (LoanStatus.ACTIVE, LoanStatus.OVERDUE),
    }
    return render(request, "lending/loan_detail.html", context)


def _loan_advice(user: User, loan: Loan, decision: Any) -> list[Advice]:
    """The engine's reasons: what a declined loan's agent can do, what a referral waits for.
    An agent reads a loan's current loans to repay only while it is declined."""
    if not decision.reasons:
        return []
    agent_id = loan.agent_id if loan.status == LoanStatus.DECLINED else None
    return advice_for(user, decision.reasons, decision.inputs, loan.advance_rate, agent_id)


def _bank_decline(loan: Loan, *, staff: bool) -> dict[str, str] | None:
    """The reason a reviewer gave for declining the loan's referral, if one did."""
    if loan.status != LoanStatus.DECLINED:
        return None
    review = referral_decline_get(loan=loan)
    if review is None:
        return None
    return {
        "code": review.decline_reason,
        "text": agent_decline_reason(review.decline_reason, staff=staff),
    }


def _loan_audit(loan: Loan) -> list[AuditLog]:
    return list(object_audit(obj=loan))
