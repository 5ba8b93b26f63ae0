"""CSRF on every form: every POST form has a token, and a session POST without one is 403."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from lending.models import Loan

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted(
    p
    for base in ("orders", "lending", "integrations", "templates")
    for p in (ROOT / base).glob("**/*.html")
    if ".venv" not in p.parts
)
FORM = re.compile(r"<form\b[^>]*>(.*?)</form>", re.DOTALL | re.IGNORECASE)
POST = re.compile(r"""\bmethod\s*=\s*["']?post\b""", re.IGNORECASE)


def post_forms(text: str) -> list[tuple[str, str]]:
    """(opening tag, body) of each POST form in a template's source."""
    found = []
    for match in FORM.finditer(text):
        tag = text[match.start() : text.index(">", match.start()) + 1]
        if POST.search(tag):
            found.append((tag, match.group(1)))
    return found


def test_the_scanner_finds_a_form_without_a_token() -> None:
    bad = '<form class="x"\n method="POST" action="/a/"><input name="a"></form>'
    good = '<form method="post">{% csrf_token %}<input></form><form method="get"></form>'
    assert [body for _, body in post_forms(bad) if "{% csrf_token %}" not in body]
    assert all("{% csrf_token %}" in body for _, body in post_forms(good))


def test_every_post_form_in_every_template_has_a_csrf_token() -> None:
    forms = [(t, tag, body) for t in TEMPLATES for tag, body in post_forms(t.read_text())]
    assert len(forms) >= 8, "expected the sign-in, sign-out, review and line forms at least"
    missing = [
        f"{t.relative_to(ROOT)}: {tag}" for t, tag, body in forms if "csrf_token" not in body
    ]
    assert missing == []


@pytest.fixture
def agent_side(signed_in_agent: Any) -> Any:
    client, _user, order = signed_in_agent
    return client, order


def csrf_token(client: Client) -> str:
    client.get("/")  # the portal page sets the CSRF cookie
    return client.cookies["csrftoken"].value


def test_a_page_form_posted_without_the_token_is_403_and_changes_nothing(agent_side: Any) -> None:
    client, order = agent_side
    url = f"/orders/{order.pk}/finance/"
    response = client.post(url, {"idempotency_key": "web-1"})
    assert response.status_code == 403
    assert not Loan.objects.filter(order=order).exists()

    token = csrf_token(client)
    accepted = client.post(url, {"idempotency_key": "web-2", "csrfmiddlewaretoken": token})
    assert accepted.status_code in (200, 201, 302)
    assert Loan.objects.filter(order=order).exists()


def test_a_session_api_call_without_the_token_is_403_and_changes_nothing(agent_side: Any) -> None:
    client, order = agent_side
    url = f"/api/v1/orders/{order.pk}/finance/"
    response = client.post(url, {}, content_type="application/json", HTTP_IDEMPOTENCY_KEY="api-1")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert "CSRF" in response.json()["detail"]
    assert not Loan.objects.filter(order=order).exists()

    token = csrf_token(client)
    accepted = client.post(
        url,
        {},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="api-2",
        HTTP_X_CSRFTOKEN=token,
    )
    assert accepted.status_code == 201
