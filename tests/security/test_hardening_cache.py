"""Nothing the app answers is kept by a shared proxy or the browser's cache: ``no-store``.

Authenticated pages, CSV exports and API replies carried no ``Cache-Control``: a shared proxy
could keep one user's page for the next, and the browser's back button after sign-out showed
the page again from its cache. Every response the app makes now says ``no-store`` unless its
view chose a policy of its own; static files (served by WhiteNoise) stay cacheable.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.conftest import client_for
from tests.security.test_idor import list_endpoints
from tests.security.world import ROLES, seed_world
from tests.web.conftest import World, build_world, login

pytestmark = pytest.mark.django_db


def assert_not_stored(response: Any, what: str) -> None:
    directives = {d.strip() for d in response.get("Cache-Control", "").split(",")}
    assert "no-store" in directives, f"{what}: Cache-Control {response.get('Cache-Control')!r}"


@pytest.fixture
def world(db: Any) -> World:
    return build_world()


PAGES = {
    "agent": ["/", "/orders/", "/loans/", "/accounts/password/"],
    "enterprise_admin": ["/dashboard/", "/accounts/password/"],
    "risk_reviewer": ["/reviews/", "/reviews/audit/", "/dashboard/"],
    "ops_admin": ["/reviews/", "/dashboard/", "/admin/"],
}


@pytest.mark.parametrize("role", list(PAGES))
def test_signed_in_pages_are_not_stored(world: World, role: str) -> None:
    client = login(world.user(role))
    for path in PAGES[role]:
        response = client.get(path)
        assert response.status_code in (200, 302), (path, response.status_code)
        assert_not_stored(response, f"{role} {path}")


def test_the_dashboard_and_its_csv_exports_are_not_stored(world: World) -> None:
    client = login(world.enterprise_admin)
    program = world.program.pk
    for path in (
        f"/dashboard/{program}/",
        f"/dashboard/{program}/orders.csv",
        f"/dashboard/{program}/loans.csv",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        assert_not_stored(response, path)


def test_htmx_fragments_and_error_pages_are_not_stored(world: World) -> None:
    client = login(world.agent_user)
    order = world.order()
    fragment = client.get(f"/orders/{order.pk}/quote/", HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    assert_not_stored(fragment, "quote fragment")
    assert_not_stored(client.get("/dashboard/"), "403 page")
    assert_not_stored(client.get("/no-such-page/"), "404 page")


def test_every_api_list_is_not_stored_for_every_role() -> None:
    """Token and session callers alike, 200s and refusals alike."""
    world = seed_world()
    seen = 0
    for role in ROLES:
        user = world.user_for(role)
        session = Client()
        session.force_login(user)
        for client in (client_for(user), session):
            for endpoint in list_endpoints():
                response = client.get(endpoint.path(0))
                assert_not_stored(response, f"{role} GET {endpoint.route} {response.status_code}")
                seen += 1
    assert seen >= 50


def test_api_errors_and_writes_are_not_stored(agent_client: Any) -> None:
    assert_not_stored(agent_client.get("/api/v1/orders/999999999/"), "404")
    assert_not_stored(Client().get("/api/v1/orders/"), "401")
    reply = agent_client.post(
        "/api/v1/orders/999999999/finance/", {}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert reply.status_code == 404
    assert_not_stored(reply, "finance 404")


def test_a_view_that_sets_its_own_policy_keeps_it() -> None:
    response = Client().get("/accounts/login/")  # Django's never_cache: its own full policy
    assert_not_stored(response, "login")
    assert "private" in response["Cache-Control"]
