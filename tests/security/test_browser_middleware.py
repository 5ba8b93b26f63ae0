"""The browser-only middleware (scf.browser) is skipped for a token API call, and only then."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.utils.module_loading import import_string

from lending.models import Loan
from scf.browser import token_api_call
from tests.security.world import token_key

BROWSER_ONLY = [m for m in settings.MIDDLEWARE if m.startswith("scf.browser.")]


def chain_seen(path: str, authorization: str | None) -> dict[str, bool]:
    """What the view behind the browser-only layers (in settings' order) finds on the request."""
    seen: dict[str, bool] = {}

    def view(request: HttpRequest) -> HttpResponse:
        seen.update(
            session=hasattr(request, "session"),
            user=hasattr(request, "user"),
            messages=hasattr(request, "_messages"),
            htmx=hasattr(request, "htmx"),
        )
        return HttpResponse("ok")

    handler: Any = view
    for path_name in reversed(BROWSER_ONLY):
        handler = import_string(path_name)(handler)
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
    response = handler(RequestFactory().get(path, **extra))
    assert response.status_code == 200
    return seen


def test_settings_name_the_browser_only_layers_where_djangos_were() -> None:
    names = [m.rsplit(".", 1)[1] for m in BROWSER_ONLY]
    assert names == [
        "SessionMiddleware",
        "AuthenticationMiddleware",
        "MessageMiddleware",
        "HtmxMiddleware",
    ]
    for kept in ("csrf.CsrfViewMiddleware", "clickjacking.XFrameOptionsMiddleware"):
        assert f"django.middleware.{kept}" in settings.MIDDLEWARE
    assert settings.MIDDLEWARE[-1] == "axes.middleware.AxesMiddleware"


@pytest.mark.parametrize("authorization", ["Token abc123", "token abc123", "TOKEN  abc123"])
def test_a_token_api_call_skips_them(authorization: str) -> None:
    seen = chain_seen("/api/v1/loans/", authorization)
    assert seen == {"session": False, "user": False, "messages": False, "htmx": False}


@pytest.mark.parametrize(
    ("path", "authorization"),
    [
        ("/api/v1/loans/", None),  # the browsable API, or a call signed in by session
        ("/api/v1/loans/", "Basic dXNlcjpwYXNz"),  # not a token: the session may still apply
        ("/api/v1/loans/", "Tokens abc"),
        ("/", "Token abc123"),  # a page: a token header changes nothing there
        ("/apix/", "Token abc123"),
        ("/admin/", "Token abc123"),
    ],
)
def test_every_other_request_goes_through_them(path: str, authorization: str | None) -> None:
    seen = chain_seen(path, authorization)
    assert seen == {"session": True, "user": True, "messages": True, "htmx": True}


def test_the_answer_is_worked_out_once_per_request() -> None:
    request = RequestFactory().get("/api/v1/loans/", HTTP_AUTHORIZATION="Token x")
    assert token_api_call(request) is True
    request.META["HTTP_AUTHORIZATION"] = ""
    assert token_api_call(request) is True  # every layer sees the same answer


def test_a_session_cannot_stand_in_for_a_bad_token(signed_in_agent: Any) -> None:
    client, _user, order = signed_in_agent
    response = client.post(
        f"/api/v1/orders/{order.pk}/finance/",
        {},
        content_type="application/json",
        HTTP_AUTHORIZATION="Token not-a-real-token",
        HTTP_IDEMPOTENCY_KEY="bad-token-1",
    )
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert not Loan.objects.filter(order=order).exists()


def test_a_token_call_finances_and_keeps_the_security_headers(signed_in_agent: Any) -> None:
    _client, user, order = signed_in_agent
    response = Client(enforce_csrf_checks=True).post(
        f"/api/v1/orders/{order.pk}/finance/",
        {},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token_key(user)}",
        HTTP_IDEMPOTENCY_KEY="token-1",
    )
    assert response.status_code == 201
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" in response
    assert "sessionid" not in response.cookies and "csrftoken" not in response.cookies
    assert Loan.objects.filter(order=order).count() == 1
