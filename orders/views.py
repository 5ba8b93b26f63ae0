"""Web pages every user shares: sign in and out, password change, and the error pages.

The pages of the three front ends live in ``lending.views``; they use ``role_required`` from here
so that a user in the wrong role gets the same helpful 403 page everywhere. Error pages say who
is signed in and link to that user's home, so a wrong link is never a dead end.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_ip_address
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _
from django_htmx.http import HttpResponseClientRedirect

from scf.auth import lockout_response

from .models import Role, User
from .services.users import user_token_rotate

View = TypeVar("View", bound=Callable[..., HttpResponseBase])

BANK_STAFF = (Role.RISK_REVIEWER, Role.RISK_APPROVER, Role.OPS_ADMIN)
RISK_STAFF = (Role.RISK_REVIEWER, Role.RISK_APPROVER)

# Who a page is for, in the words the 403 page uses.
AUDIENCES: dict[tuple[str, ...], Any] = {
    (Role.AGENT,): _("agents"),
    (Role.ENTERPRISE_ADMIN, *BANK_STAFF): _("enterprise admins and bank staff"),
    BANK_STAFF: _("bank staff"),
    RISK_STAFF: _("risk reviewers and risk approvers"),
}


def role_required(*roles: str) -> Callable[[View], View]:
    """Signed-in users in one of ``roles``; anyone else signed in gets the 403 page.

    Visitors who are not signed in go to the sign-in page; an htmx fragment request (the session
    ended while a page was open) is told to load that page whole, not to swap it into a dialog.
    """

    def decorate(view: View) -> View:
        @wraps(view)
        def in_role(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            user = cast(User, request.user)
            if user.role not in roles:
                audience = AUDIENCES.get(tuple(roles), _("other roles"))
                raise PermissionDenied(_("This page is for %(audience)s.") % {"audience": audience})
            return view(request, *args, **kwargs)

        signed_in = login_required(in_role)

        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            htmx = getattr(request, "htmx", None)
            if htmx and not request.user.is_authenticated:
                page = htmx.current_url_abs_path or "/"
                return HttpResponseClientRedirect(
                    f"{settings.LOGIN_URL}?{urlencode({'next': page})}"
                )
            return signed_in(request, *args, **kwargs)

        return cast(View, wrapper)

    return decorate


class LoginView(auth_views.LoginView):
    template_name = "orders/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    """POST only (Django 5): the sign-out button is a form with a CSRF token."""


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change, guarded like a sign-in.

    A wrong current password counts as a failed sign-in for django-axes (same username and
    address, one count for both doors): at ``AXES_FAILURE_LIMIT`` the answer is the lockout
    page (429, by ``AxesMiddleware``), and while the pair is locked out the form is refused even
    the right password, so a session holder cannot guess it without limit. A change replaces
    the user's API token (``user_token_rotate``) in the same transaction, keeps this session
    signed in and ends the others (Django's ``update_session_auth_hash``), and starts the
    failure count again, as a successful sign-in does.
    """

    template_name = "orders/password_change.html"
    success_url = reverse_lazy("password_change_done")

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        user = request.user
        if user.is_authenticated and AxesProxyHandler.is_locked(request, _credentials(user)):
            return lockout_response(request)
        return super().dispatch(request, *args, **kwargs)

    def form_invalid(self, form: Any) -> HttpResponse:
        if form.has_error("old_password", "password_incorrect"):
            user_login_failed.send(
                sender=type(self), credentials=_credentials(form.user), request=self.request
            )
        return super().form_invalid(form)

    def form_valid(self, form: Any) -> HttpResponse:
        with transaction.atomic():
            response = super().form_valid(form)
            user_token_rotate(user=form.user)
        if settings.AXES_RESET_ON_SUCCESS:
            AxesProxyHandler.reset_attempts(
                ip_address=get_client_ip_address(self.request),
                username=form.user.get_username(),
            )
        return response


def _credentials(user: Any) -> dict[str, str]:
    """What django-axes counts a failure against: the username (with the client's address)."""
    return {"username": user.get_username()}


class PasswordChangeDoneView(auth_views.PasswordChangeDoneView):
    template_name = "orders/password_change_done.html"


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """The 403 page: what the page needs, who you are, and the way back home."""
    message = str(exception) if isinstance(exception, PermissionDenied) and str(exception) else ""
    return render(request, "orders/403.html", {"message": message}, status=403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """The 404 page: used for unknown addresses and for rows the user may not see alike.

    Under ``/api/`` the answer keeps the API's error shape instead.
    """
    if request.path.startswith("/api/"):
        body = {"code": "not_found", "detail": "Not found.", "fields": {}}
        return JsonResponse(body, status=404)
    return render(request, "orders/404.html", {"path": request.path}, status=404)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent without a valid CSRF token (most often: the page was open too long)."""
    message = _("The form had expired. Go back, reload the page and try again.")
    return render(request, "orders/403.html", {"message": message}, status=403)
