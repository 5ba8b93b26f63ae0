"""The risk review queue: cases oldest first, a case page, its actions, line freezes.

Reads are ``lending.selectors.reviews`` (shared with the API); every action calls the service
behind the matching endpoint (``review_claim`` / ``review_approve`` / ``review_decline``,
``review_line_freeze`` / ``review_line_unfreeze``), which enforces roles, maker-checker and the
state machine. A freeze is confirmed on a page of its own first. A refusal comes back as a
message on the case page, never a 500. Risk reviewers and approvers act on cases; operations
admins may look, and freeze lines.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from orders.views import BANK_STAFF, RISK_STAFF, role_required
from scf import clock
from scf.errors import ApplicationError

from ..models import (
    REVIEW_OPEN,
    CreditLine,
    Decision,
    Program,
    Review,
    ReviewKind,
    ReviewStatus,
)
from ..selectors.credit import credit_line_for_agent
from ..selectors.goods import loan_goods
from ..selectors.reviews import (
    SEARCH_MAX,
    agent_recent,
    review_deadline,
    review_get,
    review_queue,
    review_sla,
    with_histories,
)
from ..services.lines import (
    credit_line_freeze,
    credit_line_freeze_validate,
    credit_line_unfreeze,
)
from ..services.reviews import (
    DECLINE_REASONS,
    approval_blocker,
    review_approve,
    review_claim,
    review_close,
    review_decline,
    review_line_freeze,
    review_line_unfreeze,
)
from .common import choice, page_of, query_without_page, safe_next, web_user
from .words.decisions import decision_inputs, reason_words, rule_rows
from .words.reviews import error_words


@dataclass(frozen=True)
class QueueRow:
    review: Review
    deadline: dt.datetime
    sla: str  # ok | warn | late


def queue_row(review: Review, now: dt.datetime) -> QueueRow:
    return QueueRow(review, review_deadline(review), review_sla(review, now))


@require_GET
@role_required(*BANK_STAFF)
def queue(request: HttpRequest) -> HttpResponse:
    """Cases oldest first; filters: kind, status, a search (agent, order, loan), "my cases"."""
    kind = choice(request, "kind", ReviewKind.values)
    status = choice(request, "status", ReviewStatus.values)
    search = request.GET.get("q", "").strip()[:SEARCH_MAX]
    mine = request.GET.get("mine") == "1"
    user = web_user(request)
    reviews = review_queue(
        user=user, kind=kind, status=status, search=search, claimed_by=user if mine else None
    )
    page = page_of(request, reviews)
    now = clock.now()
    context = {
        "page": page,
        "rows": [queue_row(review, now) for review in page.object_list],
        "kind": kind or "",
        "status": status or "",
        "search": search,
        "mine": mine,
        "follow_up_hours": settings.REVIEW_FOLLOW_UP_SLA_HOURS,
        "kinds": ReviewKind.values,
        "statuses": ReviewStatus.values,
        "query": query_without_page(request),
    }
    return render(request, "lending/reviews.html", context)


def _line_figures(
    decision: Decision | None, line: CreditLine, program: Program
) -> list[dict[str, Any]]:
    """The line's figures the engine saw (its stored inputs) beside the same figures now."""
    then = decision.inputs if decision is not None else {}
    return [
        {"label": _("Limit"), "then": then.get("line_limit"), "now": line.limit, "money": True},
        {"label": _("Outstanding"), "then": None, "now": line.outstanding_principal, "money": True},
        {"label": _("Reserved"), "then": None, "now": line.reserved, "money": True},
        {
            "label": _("Available"),
            "then": then.get("line_available"),
            "now": line.available,
            "money": True,
        },
        {
            "label": _("Available in the program"),
            "then": then.get("program_available"),
            "now": program.available,
            "money": True,
        },
        {"label": _("Risk grade"), "then": then.get("risk_grade"), "now": line.risk_grade},
        {"label": _("Frozen"), "then": then.get("line_frozen"), "now": line.frozen, "flag": True},
    ]


@require_GET
@role_required(*BANK_STAFF)
def case(request: HttpRequest, review_id: int) -> HttpResponse:
    """Everything a reviewer needs to decide: inputs, rules, the agent's history and line."""
    review = with_histories([_case_or_404(request, review_id)], user=web_user(request))[0]
    loan = review.loan
    decision = getattr(loan, "decision", None)
    user = web_user(request)
    line = loan.credit_line
    blocker = approval_blocker(line=line) if review.kind == ReviewKind.REFERRAL else None
    context = {
        "review": review,
        "row": queue_row(review, clock.now()),
        "loan": loan,
        "line": line,
        "line_figures": _line_figures(decision, line, loan.program),
        "approve_blocked": error_words(blocker, "") if blocker else "",
        "decision": decision,
        "reasons": reason_words(decision.reasons if decision else []),
        "rules": rule_rows(decision.rules, decision.inputs) if decision else [],
        "inputs": decision_inputs(decision.inputs) if decision else [],
        "history": review.agent_history,  # type: ignore[attr-defined]
        "decline_reasons": list(DECLINE_REASONS),
        "can_act": user.role in RISK_STAFF and review.status in REVIEW_OPEN,
        "is_referral": review.kind == ReviewKind.REFERRAL,
        "awaiting_second": review.status == ReviewStatus.AWAITING_SECOND_APPROVAL,
        **agent_recent(user=user, agent_id=loan.agent_id),
        "goods": loan_goods(loan=loan),
    }
    return render(request, "lending/review_case.html", context)


def _case_or_404(request: HttpRequest, review_id: int) -> Review:
    """A case of the caller's bank (another bank's is a 404, as a missing one); checked before
    every action too: a case never changes bank."""
    review = review_get(user=web_user(request), review_id=review_id)
    if review is None:
        raise Http404
    return review


def _refusal(request: HttpRequest, exc: ApplicationError) -> None:
    text = error_words(exc.code, exc.detail)
    details = [message for errors in exc.fields.values() for message in errors]
    messages.error(request, " ".join([text, *details]))


def _act(request: HttpRequest, review_id: int, action: str) -> HttpResponse:
    """Run one review action and go back to the case with its outcome as a message."""
    user, note = web_user(request), request.POST.get("note", "")
    _case_or_404(request, review_id)
    try:
        if action == "claim":
            review = review_claim(user=user, review_id=review_id, note=note)
        elif action == "approve":
            review = review_approve(user=user, review_id=review_id, note=note)
        elif action == "close":
            review = review_close(user=user, review_id=review_id, note=note)
        else:
            reason = request.POST.get("reason", "")
            review = review_decline(user=user, review_id=review_id, reason=reason, note=note)
    except ApplicationError as exc:
        if exc.status_code == 404:
            raise Http404 from None
        _refusal(request, exc)
    else:
        done = {
            ReviewStatus.CLAIMED: _("You have claimed this case."),
            ReviewStatus.AWAITING_SECOND_APPROVAL: _(
                "First approval recorded. A risk approver other than you must approve it too."
            ),
            ReviewStatus.APPROVED: _("Approved. The loan will be paid out."),
            ReviewStatus.DECLINED: _("Declined. The reserved credit has been released."),
            ReviewStatus.CLOSED: _("Case closed."),
        }
        messages.success(request, done.get(ReviewStatus(review.status), _("Saved.")))
    return redirect("web:review-case", review_id=review_id)


@require_POST
@role_required(*RISK_STAFF)
def claim(request: HttpRequest, review_id: int) -> HttpResponse:
    return _act(request, review_id, "claim")


@require_POST
@role_required(*RISK_STAFF)
def approve(request: HttpRequest, review_id: int) -> HttpResponse:
    return _act(request, review_id, "approve")


@require_POST
@role_required(*RISK_STAFF)
def decline(request: HttpRequest, review_id: int) -> HttpResponse:
    return _act(request, review_id, "decline")


@require_POST
@role_required(*RISK_STAFF)
def close(request: HttpRequest, review_id: int) -> HttpResponse:
    return _act(request, review_id, "close")


CONFIRMED = "yes"


def _freeze_confirmation(
    request: HttpRequest, *, line: CreditLine, back: str, review: Review | None = None
) -> HttpResponse:
    """Before a freeze: the page asking to confirm it, or back with the reason it cannot be."""
    try:
        reason = credit_line_freeze_validate(line=line, reason=request.POST.get("reason", ""))
    except ApplicationError as exc:
        _refusal(request, exc)
        return redirect(back)
    context = {"line": line, "reason": reason, "action": request.path, "back": back}
    return render(request, "lending/line_freeze_confirm.html", {**context, "review": review})


def _line_changed(request: HttpRequest, freeze: bool) -> None:
    messages.success(request, _("The line is frozen.") if freeze else _("The line is unfrozen."))


def _line_action(
    request: HttpRequest, agent_id: int, program_id: int, freeze: bool
) -> HttpResponse:
    user = web_user(request)
    line = credit_line_for_agent(user=user, agent_id=agent_id, program_id=program_id)
    if line is None:
        raise Http404
    back = safe_next(request, reverse("web:reviews"))
    if freeze and request.POST.get("confirmed") != CONFIRMED:
        return _freeze_confirmation(request, line=line, back=back)
    reason = request.POST.get("reason", "")
    try:
        if freeze:
            credit_line_freeze(actor=user, line=line, reason=reason)
        else:
            credit_line_unfreeze(actor=user, line=line, reason=reason)
    except ApplicationError as exc:
        _refusal(request, exc)
    else:
        _line_changed(request, freeze)
    return redirect(back)


@require_POST
@role_required(*BANK_STAFF)
def line_freeze(request: HttpRequest, agent_id: int, program_id: int) -> HttpResponse:
    return _line_action(request, agent_id, program_id, freeze=True)


@require_POST
@role_required(*BANK_STAFF)
def line_unfreeze(request: HttpRequest, agent_id: int, program_id: int) -> HttpResponse:
    return _line_action(request, agent_id, program_id, freeze=False)


def _case_line_action(request: HttpRequest, review_id: int, freeze: bool) -> HttpResponse:
    """Freeze or unfreeze the case's line from the case page (recorded in the case's notes)."""
    review = _case_or_404(request, review_id)
    back = reverse("web:review-case", args=[review_id])
    if freeze and request.POST.get("confirmed") != CONFIRMED:
        return _freeze_confirmation(request, line=review.loan.credit_line, back=back, review=review)
    change = review_line_freeze if freeze else review_line_unfreeze
    try:
        change(user=web_user(request), review_id=review_id, reason=request.POST.get("reason", ""))
    except ApplicationError as exc:
        if exc.status_code == 404:
            raise Http404 from None
        _refusal(request, exc)
    else:
        _line_changed(request, freeze)
    return redirect(back)


@require_POST
@role_required(*BANK_STAFF)
def case_line_freeze(request: HttpRequest, review_id: int) -> HttpResponse:
    return _case_line_action(request, review_id, freeze=True)


@require_POST
@role_required(*BANK_STAFF)
def case_line_unfreeze(request: HttpRequest, review_id: int) -> HttpResponse:
    return _case_line_action(request, review_id, freeze=False)
