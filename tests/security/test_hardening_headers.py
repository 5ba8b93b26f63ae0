"""Security headers on every response, and a CSP the templates actually satisfy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted(
    p
    for app in ("orders", "lending", "integrations")
    for p in (ROOT / app).glob("templates/**/*.html")
)


def directives(policy: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def assert_security_headers(response: Any) -> None:
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    csp = directives(response["Content-Security-Policy"])
    assert csp["default-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["base-uri"] == ["'self'"]
    assert csp["form-action"] == ["'self'"]
    # No inline <script> and no script from anywhere but our own static files.
    assert "'unsafe-inline'" not in csp["script-src"]
    assert [s for s in csp["script-src"] if not s.startswith("'")] == []


@pytest.mark.django_db
def test_a_page_carries_the_security_headers() -> None:
    response = Client().get("/accounts/login/")
    assert response.status_code == 200
    assert_security_headers(response)


def test_an_api_response_carries_the_security_headers(agent_client: Any) -> None:
    response = agent_client.get("/api/v1/orders/")
    assert response.status_code == 200
    assert_security_headers(response)


@pytest.mark.django_db
def test_error_responses_carry_them_too() -> None:
    assert_security_headers(Client().get("/api/v1/orders/"))  # 401/403
    assert_security_headers(Client().get("/no-such-page/"))  # 404


def test_templates_have_no_inline_script_blocks() -> None:
    assert TEMPLATES, "no templates found"
    for template in TEMPLATES:
        for tag in re.findall(r"<script\b[^>]*>", template.read_text()):
            assert "src=" in tag, f"{template}: inline <script> would be blocked by the CSP"


def test_pages_run_no_inline_handlers_and_no_eval() -> None:
    csp = directives(settings.CSP_POLICY)
    assert "'unsafe-eval'" not in csp["script-src"]
    assert csp["script-src-attr"] == ["'none'"]
    for template in TEMPLATES:
        text = template.read_text()
        assert not re.findall(r"\son[a-z]+=", text), f"{template}: inline handler"
        assert "hx-on" not in text, f"{template}: hx-on needs eval"
        assert not re.findall(r'hx-trigger="[^"]*\[', text), (
            f"{template}: a trigger filter needs eval"
        )
    base = next(t for t in TEMPLATES if t.name == "base.html").read_text()
    assert """"allowEval": false""" in base and "web/app.js" in base


# --- the API docs page (/api/docs/) ----------------------------------------------------------


@pytest.mark.django_db
def test_the_api_docs_page_has_the_sites_own_policy() -> None:
    """Swagger UI used to come from a public CDN (unpinned) under a policy allowing any https
    origin; it is served from our static files now, under the policy of every other page."""
    response = Client().get("/api/docs/")
    assert response.status_code == 200
    assert_security_headers(response)
    assert response["Content-Security-Policy"] == settings.CSP_POLICY
    assert "https:" not in response["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_the_api_docs_page_loads_only_our_own_files() -> None:
    html = Client().get("/api/docs/").content.decode()
    urls = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert urls, html
    for url in urls:
        assert url.startswith(("/static/", "/api/docs/?")), url
    assert "swagger-ui-bundle.js" in html
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag, f"an inline <script> is refused by the policy: {tag}"


@pytest.mark.django_db
def test_the_api_docs_start_up_script_is_a_file_of_its_own() -> None:
    html = Client().get("/api/docs/").content.decode()
    (script,) = [u for u in re.findall(r'<script src="([^"]*)"', html) if "script" in u]
    response = Client().get(script.replace("&amp;", "&"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle(" in response.content and b"/api/schema/" in response.content


def test_the_swagger_ui_files_are_static_files_of_ours() -> None:
    from django.contrib.staticfiles import finders

    for name in ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"):
        assert finders.find(f"drf_spectacular_sidecar/swagger-ui-dist/{name}"), name
