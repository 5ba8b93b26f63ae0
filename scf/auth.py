"""Sign-in throttling (django-axes) on every login that comes with a request."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesBackend
from axes.helpers import get_cool_off
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


class LoginThrottleBackend(AxesBackend):
    """Axes' lockout check, first in ``AUTHENTICATION_BACKENDS``.

    Axes refuses ``authenticate()`` calls without a request. Those come from our own code
    (management commands, a shell, tests), never from the network, so they are passed on to
    ``ModelBackend`` unchecked instead of raising; every web and admin sign-in has a request and
    is counted.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def lockout_response(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    """The lockout page: 429, with ``Retry-After`` set to the cool-off."""
    cool_off = get_cool_off(request)
    seconds = int(cool_off.total_seconds()) if cool_off else 0
    context = {"minutes": max(1, -(-seconds // 60)) if seconds else None}
    response = render(request, "orders/lockout.html", context, status=429)
    if seconds:
        response["Retry-After"] = str(seconds)
    return response
