"""Small helpers shared by the web pages: the signed-in user, filters, pages, safe redirects,
the rate-limited answer."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

from orders.models import User
from scf.throttling import RateLimited

PAGE_SIZE = 25


def web_user(request: HttpRequest) -> User:
    """The caller; every page here is behind ``role_required`` (a signed-in platform user)."""
    return cast(User, request.user)


def choice(request: HttpRequest, name: str, choices: list[str]) -> str | None:
    """A query parameter that must be one of ``choices``; anything else is ignored."""
    value = request.GET.get(name, "")
    return value if value in choices else None


def day_param(request: HttpRequest, name: str) -> dt.date | None:
    """A query parameter that must be an ISO date (``2026-11-20``); anything else is ignored."""
    try:
        return dt.date.fromisoformat(request.GET.get(name, ""))
    except ValueError:
        return None


def page_of(request: HttpRequest, rows: Any, per_page: int = PAGE_SIZE) -> Page:
    """One page of ``rows`` (a queryset or list): a count and a slice, whatever the total."""
    return Paginator(rows, per_page).get_page(request.GET.get("page"))


def query_without_page(request: HttpRequest) -> str:
    """The current filters as a query string, for pagination links."""
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def safe_next(request: HttpRequest, fallback: str) -> str:
    """Where a form asked to go back to, if it is on this site; else ``fallback``."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


def rate_limited(request: HttpRequest, exc: RateLimited) -> HttpResponse:
    """The portal's answer to a click over the user's rate limit: 429 with ``Retry-After`` and a
    dialog saying how long to wait. htmx is told to swap it into the finance dialog (the base
    page's htmx config swaps a 429), whichever element the click targeted."""
    context = {"seconds": exc.retry_after, "partial": "lending/_rate_limited.html"}
    if request.htmx:  # type: ignore[attr-defined]
        response = render(request, "lending/_rate_limited.html", context, status=429)
        response["HX-Retarget"] = "#finance-dialog"
        response["HX-Reswap"] = "innerHTML"
    else:
        response = render(request, "lending/finance_page.html", context, status=429)
    response["Retry-After"] = str(exc.retry_after)
    return response
