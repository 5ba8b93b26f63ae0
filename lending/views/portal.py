"""The agent portal: credit line, orders with what is on offer, the finance flow, loans.

Thin pages over the same reads and writes as the API:

- orders come from ``order_list_for_lending`` and ``financeable_orders``; the amount on offer is
  ``terms.principal_for`` with the program ``finance.program_for_order`` would pick;
- the quote is ``loan_quote``; **Finance this order** is ``loan_finance_once``, the same call
  with the same scope and fingerprint as ``POST /api/v1/orders/{id}/finance/``. The
  quote carries a fresh Idempotency-Key, sent as a header by htmx (and as a form field without
  JavaScript), so a double click, a retry or a second tab replays the first reply and never
  makes a second loan;
- loans come from ``loan_list`` / ``loan_get`` (another agent's loan is a 404) and the schedule
  from ``loan_schedule``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from orders.models import OrderStatus, Role, SalesOrder
from orders.views import BANK_STAFF, role_required
from scf.errors import ApplicationError, NotFound
from scf.throttling import RateLimited

from ..models import AuditLog, Disbursement, Loan, LoanStatus, Program, ProgramStatus
from ..program_selectors import credit_lines_visible_to
from ..selectors import (
    financeable_orders,
    loan_get,
    loan_journal_lines,
    loan_list,
    order_list_for_lending,
)
from ..serializers import loan_schedule
from ..services.finance import loan_finance_once, loan_quote
from ..services.idempotency import MAX_KEY_LENGTH, StoredReply
from ..services.terms import principal_for
from .common import choice, page_of, query_without_page, rate_limited, web_user
from .words import REASONS as REASON_WORDS
from .words import reason_words, word

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
    lines = list(credit_lines_visible_to(user).select_related("program").order_by("program_id"))
    orders = list(order_list_for_lending(user=user, financeable=True)[:RECENT])
    context = {
        "lines": lines,
        "orders": orders,
        "offers": order_offers(orders),
        "loans": list(loan_list(user=user)[:RECENT]),
    }
    return render(request, "lending/portal.html", context)


def order_offers(orders: list[SalesOrder]) -> dict[int, Decimal]:
    """Principal on offer for each financeable order of a page, in two queries for any page.

    Financeable is the API's ``financeable_orders``; the program is the one the finance service
    would use (the enterprise's first active program in the order's currency).
    """
    if not orders:
        return {}
    ids = [order.pk for order in orders]
    financeable = set(
        financeable_orders(SalesOrder.objects.filter(pk__in=ids)).values_list("pk", flat=True)
    )
    programs: dict[tuple[int, str], Program] = {}
    for active in Program.objects.filter(
        enterprise_id__in={order.enterprise_id for order in orders}, status=ProgramStatus.ACTIVE
    ).order_by("id"):
        programs.setdefault((active.enterprise_id, active.currency), active)
    offers: dict[int, Decimal] = {}
    for order in orders:
        program = programs.get((order.enterprise_id, order.currency))
        if order.pk in financeable and program is not None:
            offers[order.pk] = principal_for(order.amount, program.advance_rate)
    return offers


@require_GET
@role_required(*EVERYONE)
def order_list(request: HttpRequest) -> HttpResponse:
    """Orders the user may see, filtered by status and "financeable only"."""
    status = choice(request, "status", OrderStatus.values)
    financeable = request.GET.get("financeable") == "1"
    orders = order_list_for_lending(
        user=web_user(request), status=status, financeable=financeable or None
    )
    page = page_of(request, orders)
    context = {
        "page": page,
        "rows": list(page.object_list),
        "offers": order_offers(list(page.object_list)),
        "status": status or "",
        "financeable": financeable,
        "statuses": OrderStatus.values,
        "query": query_without_page(request),
    }
    template = "lending/_order_table.html" if request.htmx else "lending/orders.html"  # type: ignore[attr-defined]
    return render(request, template, context)


def _partial_or_page(request: HttpRequest, partial: str, context: dict[str, Any]) -> HttpResponse:
    """htmx gets the fragment; a plain request (no JavaScript) the whole page around it."""
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, partial, context)
    return render(request, "lending/finance_page.html", {**context, "partial": partial})


@require_GET
@role_required(Role.AGENT)
def order_quote(request: HttpRequest, order_id: int) -> HttpResponse:
    """The quote for one of the agent's orders, with a fresh Idempotency-Key for the confirm."""
    try:
        quote = loan_quote(user=web_user(request), order_id=order_id)
    except RateLimited as exc:
        return rate_limited(request, exc)
    except NotFound:
        raise Http404 from None
    except ApplicationError as exc:
        return _partial_or_page(
            request, "lending/_finance_error.html", {"order_id": order_id, "error": exc.detail}
        )
    context = {
        "quote": quote,
        "order": quote.order,
        "terms": quote.terms,
        "expected": quote.decision.outcome,
        "reasons": reason_words(quote.decision.reasons),
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
    reasons: tuple[dict[str, str], ...] = ()
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
            reasons=tuple(reason_words(decision["reasons"])),
        )


@require_POST
@role_required(Role.AGENT)
def order_finance(request: HttpRequest, order_id: int) -> HttpResponse:
    """Finance this order: the outcome in place (approved, in review, or declined with reasons)."""
    key = (
        request.headers.get("Idempotency-Key") or request.POST.get("idempotency_key", "")
    ).strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        result = FinanceOutcome(
            400, error=_("The page was out of date. Please ask for a new quote.")
        )
    else:
        try:
            reply = loan_finance_once(user=web_user(request), order_id=order_id, key=key, body={})
            result = FinanceOutcome.of(reply)
        except RateLimited as exc:
            return rate_limited(request, exc)
        except ApplicationError as exc:  # the key was used for another request
            result = FinanceOutcome(exc.status_code, error_code=exc.code, error=exc.detail)
    context = {"order_id": order_id, "result": result}
    return _partial_or_page(request, "lending/_finance_result.html", context)


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


@require_GET
@role_required(*EVERYONE)
def loan_detail(request: HttpRequest, loan_id: int) -> HttpResponse:
    """Schedule, balances, how to repay, and what happened so far. A loan not yours is a 404."""
    user = web_user(request)
    loan = loan_get(user=user, loan_id=loan_id)
    if loan is None:
        raise Http404
    bank = loan.program.bank
    context = {
        "loan": loan,
        "bank": bank,
        # Where repayments go: as the reminders quote it (integrations.notifications).
        "repay_account": bank.settlement_account_no
        or getattr(settings, "LENDER_SETTLEMENT_ACCOUNT", ""),
        "schedule": loan_schedule(loan),
        "reasons": reason_words(getattr(getattr(loan, "decision", None), "reasons", []) or []),
        "repayments": list(loan.repayments.order_by("value_date", "id")),
        "disbursement": Disbursement.objects.filter(loan=loan).first(),
        "journal": list(loan_journal_lines(loan=loan)),
        "audit": _loan_audit(loan) if user.is_bank_staff else [],
        "owes": loan.status in (LoanStatus.ACTIVE, LoanStatus.OVERDUE),
    }
    return render(request, "lending/loan_detail.html", context)


def _loan_audit(loan: Loan) -> list[AuditLog]:
    return list(
        AuditLog.objects.filter(object_type="lending.loan", object_id=str(loan.pk)).order_by(
            "created_at", "id"
        )
    )
