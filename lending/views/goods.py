"""Goods and claims under a tripartite agreement, one page per party at ``/goods/``.

- the agent: goods available to pick up per financed order (and a pick-up request), the claims
  on its loans;
- the enterprise's admin: the release queue (what it may ship now, with a release form), release
  breaches, guarantee usage against the caps, the claims to accept or dispute;
- bank staff: the same figures, read-only (risk staff act on breaches and claims from the review
  queue and the API).

Thin: the reads are ``lending.selectors.goods``, the writes ``release_request``,
``claim_accept`` and ``claim_dispute``, as for the API.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from orders.models import Role
from orders.views import BANK_STAFF, role_required
from scf.errors import ApplicationError

from ..selectors.goods import (
    breach_list,
    claim_get,
    claim_list,
    guarantee_usage,
    holds_visible_to,
    loan_for_goods,
    release_queue,
)
from ..services.claim_actions import claim_accept, claim_dispute
from ..services.releases import release_request
from .common import web_user
from .words.reviews import error_words

EVERYONE = (Role.AGENT, Role.ENTERPRISE_ADMIN, *BANK_STAFF)
SHOWN = 100


@require_GET
@role_required(*EVERYONE)
def goods_page(request: HttpRequest) -> HttpResponse:
    user = web_user(request)
    agent = user.role == Role.AGENT
    context = {
        "is_agent": agent,
        "is_enterprise": user.role == Role.ENTERPRISE_ADMIN,
        "holds": list(holds_visible_to(user)[:SHOWN]) if agent else [],
        "queue": [] if agent else list(release_queue(principal=user)[:SHOWN]),
        "breaches": [] if agent else list(breach_list(principal=user)[:SHOWN]),
        "usage": [] if agent else guarantee_usage(principal=user),
        "claims": list(claim_list(principal=user)[:SHOWN]),
    }
    return render(request, "lending/goods.html", context)


def _refused(request: HttpRequest, exc: ApplicationError) -> None:
    details = [message for errors in exc.fields.values() for message in errors]
    messages.error(request, " ".join([error_words(exc.code, exc.detail), *details]))


@require_POST
@role_required(Role.AGENT, Role.ENTERPRISE_ADMIN)
def goods_release(request: HttpRequest, loan_id: int) -> HttpResponse:
    """The agent's pick-up request or the enterprise's release, of a value."""
    user = web_user(request)
    loan = loan_for_goods(principal=user, loan_id=loan_id)
    if loan is None:
        raise Http404
    kind = "agent" if user.role == Role.AGENT else "enterprise"
    try:
        release = release_request(
            loan=loan,
            data={"value": request.POST.get("value", "")},
            requested_by_kind=kind,
            actor=user,
        )
    except ApplicationError as exc:
        _refused(request, exc)
    else:
        messages.success(
            request,
            _("Release of %(value)s authorised for order %(order)s.")
            % {"value": release.value, "order": loan.order.external_id},
        )
    return redirect("web:goods")


@require_POST
@role_required(Role.ENTERPRISE_ADMIN)
def goods_claim(request: HttpRequest, claim_id: int, action: str) -> HttpResponse:
    user = web_user(request)
    claim = claim_get(principal=user, claim_id=claim_id)
    if claim is None:
        raise Http404
    try:
        if action == "accept":
            claim_accept(claim_id=claim.pk, actor=user)
            messages.success(request, _("Claim %(ref)s accepted.") % {"ref": claim.reference})
        else:
            claim_dispute(claim_id=claim.pk, actor=user, reason=request.POST.get("reason", ""))
            messages.success(request, _("Claim %(ref)s disputed.") % {"ref": claim.reference})
    except ApplicationError as exc:
        _refused(request, exc)
    return redirect("web:goods")
