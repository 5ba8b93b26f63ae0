"""The bank operations page (operations admins), beside the review queue: the unapplied-credit
queue (apply to a loan or a margin account by its reference, or refund), the latest reconciliation runs with their
breaks, and the recent bank files with any quarantine reason, each of the user's bank only. Every action calls the service
behind the matching API (``unapplied_apply``, ``unapplied_refund``); a refusal comes back as a
message on the page, never a 500."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from lending.selectors.loans import loan_get
from lending.selectors.tripartite import margin_account_for_reference_visible
from lending.services.repayments import loan_for_reference
from lending.views.common import web_user
from orders.models import Role
from orders.views import role_required
from scf.errors import ApplicationError

from ...bank_models import UnappliedStatus
from .selectors import (
    latest_reconciliations,
    recent_bank_files,
    unapplied_credit_get,
    unapplied_credits,
)
from .unapplied import unapplied_apply, unapplied_refund

PAGE = "bankops:operations"


def _existing(request: HttpRequest, credit_id: int) -> None:
    """A credit that does not exist, or is another bank's, is a 404, like any page's missing
    object."""
    if unapplied_credit_get(user=request.user, credit_id=credit_id) is None:
        raise Http404("No such unapplied credit.")


@require_GET
@role_required(Role.OPS_ADMIN)
def operations(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status") or UnappliedStatus.OPEN
    context = {
        "credits": list(unapplied_credits(user=request.user, status=status)[:200]),
        "status": status,
        "statuses": UnappliedStatus.choices,
        "runs": latest_reconciliations(user=request.user),
        "files": recent_bank_files(user=request.user),
    }
    return render(request, "integrations/bank_operations.html", context)


@require_POST
@role_required(Role.OPS_ADMIN)
def apply(request: HttpRequest, credit_id: int) -> HttpResponse:
    _existing(request, credit_id)
    reference = request.POST.get("loan_reference", "").strip()
    if reference.upper().startswith("MG-"):
        account = margin_account_for_reference_visible(user=web_user(request), reference=reference)
        if account is None:
            messages.error(
                request, _("No margin account has the reference %(ref)s.") % {"ref": reference}
            )
            return redirect(PAGE)
        done = _("Credit lodged as margin in %(ref)s.") % {"ref": account.reference}
        return _applied(request, credit_id, done, margin_account_id=account.pk)
    found = loan_for_reference(reference)
    # Another bank's loan reads as no loan at all: the page names no loan the operator may not see.
    loan = loan_get(user=web_user(request), loan_id=found.pk) if found is not None else None
    if loan is None:
        messages.error(request, _("No loan has the reference %(ref)s.") % {"ref": reference})
        return redirect(PAGE)
    done = _("Credit applied to loan %(ref)s.") % {"ref": loan.reference}
    return _applied(request, credit_id, done, loan_id=loan.pk)


def _applied(request: HttpRequest, credit_id: int, done: str, **target: int) -> HttpResponse:
    try:
        unapplied_apply(credit_id=credit_id, actor=request.user, **target)
    except ApplicationError as exc:
        messages.error(request, _("Not applied: %(detail)s") % {"detail": exc.detail})
    else:
        messages.success(request, done)
    return redirect(PAGE)


@require_POST
@role_required(Role.OPS_ADMIN)
def refund(request: HttpRequest, credit_id: int) -> HttpResponse:
    _existing(request, credit_id)
    try:
        unapplied_refund(credit_id=credit_id, actor=request.user)
    except ApplicationError as exc:
        messages.error(request, _("Not refunded: %(detail)s") % {"detail": exc.detail})
    else:
        messages.success(request, _("The refund goes out in the next payment file."))
    return redirect(PAGE)
