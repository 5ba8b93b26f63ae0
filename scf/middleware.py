"""Request ids, the Content-Security-Policy, request metrics, body limits and cache policy.

- ``RequestIdMiddleware`` (first in ``MIDDLEWARE``): takes a sane incoming ``X-Request-ID``
  (1-64 characters of ``[A-Za-z0-9._:-]``) or makes a uuid4, stores it in the context variable
  every log record reads, echoes it as the response's ``X-Request-ID``, and observes the request's
  latency in the ``scf_http_request_duration_seconds`` histogram by view, method and status.
- ``ContentSecurityPolicyMiddleware``: Django has no CSP of its own (the other security headers
  come from ``SecurityMiddleware`` and ``XFrameOptionsMiddleware`` settings). The policy is
  ``settings.CSP_POLICY``, on every page (the API docs included).
- ``RequestBodyLimitMiddleware``: a body above its endpoint's byte cap is refused with 413.
- ``NoStoreMiddleware``: ``Cache-Control: no-store`` unless the view set its own.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

from .logging import request_id_var

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

Handler = Callable[[HttpRequest], HttpResponse]


def request_id_from(request: HttpRequest) -> str:
    incoming = request.headers.get("X-Request-ID", "")
    return incoming if _SANE_REQUEST_ID.match(incoming) else uuid.uuid4().hex


def _view_label(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "<unresolved>"
    return match.view_name or match._func_path


class RequestIdMiddleware:
    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from .metrics import observe_request

        request_id = request_id_from(request)
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            observe_request(
                view=_view_label(request),
                method=request.method or "",
                status=response.status_code,
                seconds=time.perf_counter() - started,
            )
            return response
        finally:
            request_id_var.reset(token)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = settings.CSP_POLICY
        return response


class NoStoreMiddleware:
    """``Cache-Control: no-store`` on every response the app makes, unless its view set a policy.

    Pages, htmx fragments, CSV exports and API replies are one user's data: a shared proxy must
    not keep them for the next user, nor the browser for its back button after sign-out. Static
    files never get here (WhiteNoise, listed before this, answers them with its own caching).
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Cache-Control" not in response:
            response["Cache-Control"] = "no-store"
        return response


class DatabaseUnavailableMiddleware:
    """A page whose database is down or restarting answers 503 with ``Retry-After``, not 500.

    The API does the same in ``scf.api.exception_handler`` (with the error shape); this covers
    the web pages, whose exceptions DRF never sees.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        response = HttpResponse(
            "The service is briefly unavailable; please retry in a few seconds.",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
        response["Retry-After"] = "5"
        return response


def body_limit_for(view_func: Callable[..., object]) -> int:
    """The byte cap of a view's request body: the setting its class names in
    ``max_body_bytes_setting``, else ``settings.API_MAX_BODY_BYTES``."""
    view_class = getattr(view_func, "view_class", None)
    name = getattr(view_class, "max_body_bytes_setting", "API_MAX_BODY_BYTES")
    return int(getattr(settings, name))


class RequestBodyLimitMiddleware:
    """A request body above its endpoint's cap is answered 413 before anything reads it.

    Decided on ``Content-Length`` (Django reads no more than it says, and nothing of a body
    without one), once the URL is resolved, so each endpoint has its own cap: the order feed's
    bulk and CSV endpoints take more than the rest (``body_limit_for``). Under ``/api/`` the
    answer has the API's error shape.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., object],
        view_args: object,
        view_kwargs: object,
    ) -> HttpResponse | None:
        try:
            size = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None  # Django reads such a body as empty
        limit = body_limit_for(view_func)
        if size <= limit:
            return None
        detail = f"The request body is {size} bytes; this endpoint takes at most {limit}."
        if request.path_info.startswith("/api/"):
            body = {"code": "request_too_large", "detail": detail, "fields": {}}
            return JsonResponse(body, status=413)
        return HttpResponse(detail, status=413, content_type="text/plain; charset=utf-8")
