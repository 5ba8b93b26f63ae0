"""The middleware only a browser needs, skipped for an API call that carries a token.

A call to ``/api/`` with ``Authorization: Token ...`` is authenticated by its token alone (DRF's
token authentication either accepts it or answers 401): it has no session and no signed-in user
to load, no messages to show, and it is not an htmx swap. Those layers are work done for nothing
on the busiest path there is, the agents' finance clicks (measured: docs/performance.md). CSRF
checks, frame options and the other security headers stay on every response (and Django's deploy
checks want its own CSRF middleware by name).

Each class below is Django's (or django-htmx's) own, unchanged for every other request: a web
page, the admin, the browsable API or an API call signed in by session. ``settings.MIDDLEWARE``
names these in the places Django's would be, so the order, Django's own checks (the admin's
need for sessions, the signed-in user and messages) and the tests' client are the same.
"""

from __future__ import annotations

from django.contrib.auth.middleware import AuthenticationMiddleware as _Authentication
from django.contrib.messages.middleware import MessageMiddleware as _Messages
from django.contrib.sessions.middleware import SessionMiddleware as _Sessions
from django.http import HttpRequest, HttpResponse
from django_htmx.middleware import HtmxMiddleware as _Htmx

API_PREFIX = "/api/"
TOKEN_KEYWORD = "token "  # DRF's TokenAuthentication keyword, compared case-insensitively


def token_api_call(request: HttpRequest) -> bool:
    """True for a request to the API that names a token in its ``Authorization`` header."""
    known = request.__dict__.get("_scf_token_api_call")
    if known is None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        known = request.path_info.startswith(API_PREFIX) and header[:6].lower() == TOKEN_KEYWORD
        request._scf_token_api_call = known  # type: ignore[attr-defined]
    return bool(known)


def _for_browsers(base: type) -> type:
    """``base``, except that a token API call passes straight through it."""

    class ForBrowsers(base):  # type: ignore[valid-type, misc]
        def __call__(self, request: HttpRequest) -> HttpResponse:
            if token_api_call(request):
                return self.get_response(request)  # type: ignore[no-any-return]
            return super().__call__(request)  # type: ignore[no-any-return]

    ForBrowsers.__name__ = ForBrowsers.__qualname__ = base.__name__
    ForBrowsers.__doc__ = f"{base.__module__}.{base.__name__}, skipped for a token API call."
    return ForBrowsers


SessionMiddleware = _for_browsers(_Sessions)
AuthenticationMiddleware = _for_browsers(_Authentication)
MessageMiddleware = _for_browsers(_Messages)
HtmxMiddleware = _for_browsers(_Htmx)
