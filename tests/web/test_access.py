"""Who can open which page: every page for every role, rows of others are 404, helpful errors."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from lending.models import Review
from lending.services.finance import loan_finance
from tests.web.conftest import PASSWORD, World, login

pytestmark = pytest.mark.django_db

ROLES = ["agent", "enterprise_admin", "risk_reviewer", "risk_approver", "ops_admin"]


def _urls(world: World) -> dict[str, str]:
    approved = loan_finance(user=world.agent_user, order_id=world.order().pk)
    referred = loan_finance(user=world.agent_user, order_id=world.order("10000.00").pk)
    review = Review.objects.get(loan=referred)
    quote_order = world.order()
    pid = world.program.pk
    return {
        "home": "/",
        "orders": "/orders/",
        "quote": f"/orders/{quote_order.pk}/quote/",
        "loans": "/loans/",
        "loan": f"/loans/{approved.pk}/",
        "dashboard": "/dashboard/",
        "program": f"/dashboard/{pid}/",
        "orders_csv": f"/dashboard/{pid}/orders.csv",
        "loans_csv": f"/dashboard/{pid}/loans.csv",
        "reviews": "/reviews/",
        "case": f"/reviews/{review.pk}/",
        "audit": "/reviews/audit/",
        "password": "/accounts/password/",
    }


# page -> the status each role gets (302: sent on to its own home).
MATRIX: dict[str, dict[str, int]] = {
    "home": {"agent": 200, "enterprise_admin": 302, "risk_reviewer": 302, "risk_approver": 302,
             "ops_admin": 302},
    "orders": dict.fromkeys(ROLES, 200),
    "quote": {"agent": 200, "enterprise_admin": 403, "risk_reviewer": 403, "risk_approver": 403,
              "ops_admin": 403},
    "loans": dict.fromkeys(ROLES, 200),
    "loan": dict.fromkeys(ROLES, 200),
    "dashboard": {"agent": 403, "enterprise_admin": 302, "risk_reviewer": 200,
                  "risk_approver": 200, "ops_admin": 200},
    "program": {"agent": 403, "enterprise_admin": 200, "risk_reviewer": 200,
                "risk_approver": 200, "ops_admin": 200},
    "orders_csv": {"agent": 403, "enterprise_admin": 200, "risk_reviewer": 200,
                   "risk_approver": 200, "ops_admin": 200},
    "loans_csv": {"agent": 403, "enterprise_admin": 200, "risk_reviewer": 200,
                  "risk_approver": 200, "ops_admin": 200},
    "reviews": {"agent": 403, "enterprise_admin": 403, "risk_reviewer": 200,
                "risk_approver": 200, "ops_admin": 200},
    "case": {"agent": 403, "enterprise_admin": 403, "risk_reviewer": 200,
             "risk_approver": 200, "ops_admin": 200},
    "audit": {"agent": 403, "enterprise_admin": 403, "risk_reviewer": 200,
              "risk_approver": 200, "ops_admin": 200},
    "password": dict.fromkeys(ROLES, 200),
}  # fmt: skip


@pytest.mark.parametrize("role", ROLES)
def test_every_page_answers_each_role_as_the_matrix_says(world: World, role: str) -> None:
    urls = _urls(world)
    client = login(world.user(role))
    got = {page: client.get(url).status_code for page, url in urls.items()}
    assert got == {page: MATRIX[page][role] for page in urls}


def test_anonymous_visitors_are_sent_to_sign_in_from_every_page(world: World) -> None:
    client = Client()
    for page, url in _urls(world).items():
        response = client.get(url)
        assert response.status_code == 302, page
        assert response["Location"].startswith("/accounts/login/?next="), page


@pytest.mark.parametrize(
    ("role", "home"),
    [
        ("enterprise_admin", "/dashboard/"),
        ("risk_reviewer", "/reviews/"),
        ("risk_approver", "/reviews/"),
        ("ops_admin", "/dashboard/"),
    ],
)
def test_home_sends_each_role_to_its_front_end(world: World, role: str, home: str) -> None:
    response = login(world.user(role)).get("/")
    assert response.status_code == 302
    assert response["Location"] == home


def test_another_agents_loan_is_a_404_with_a_helpful_page(world: World) -> None:
    theirs = loan_finance(
        user=world.other_agent_user, order_id=world.order(agent=world.other_agent).pk
    )
    response = login(world.agent_user).get(f"/loans/{theirs.pk}/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "We couldn't find that" in body
    assert f"/loans/{theirs.pk}/" in body
    assert 'href="/loans/"' in body
    assert theirs.reference not in body


def test_another_agents_order_cannot_be_quoted_or_financed(world: World) -> None:
    theirs = world.order(agent=world.other_agent)
    client = login(world.agent_user)
    assert client.get(f"/orders/{theirs.pk}/quote/").status_code == 404
    response = client.post(f"/orders/{theirs.pk}/finance/", {"idempotency_key": "k-theirs"})
    assert response.status_code == 200
    assert 'data-error="not_found"' in response.content.decode()
    assert not theirs.loans.exists()


def test_another_enterprises_dashboard_and_exports_are_404(world: World) -> None:
    client = login(world.other_admin)
    pid = world.program.pk
    for url in (
        f"/dashboard/{pid}/",
        f"/dashboard/{pid}/orders.csv",
        f"/dashboard/{pid}/loans.csv",
    ):
        assert client.get(url).status_code == 404, url


def test_enterprise_admin_sees_only_loans_of_its_programs(world: World) -> None:
    ours = loan_finance(user=world.agent_user, order_id=world.order().pk)
    response = login(world.other_admin).get(f"/loans/{ours.pk}/")
    assert response.status_code == 404
    listing = login(world.other_admin).get("/loans/").content.decode()
    assert ours.reference not in listing


def test_the_403_page_says_why_who_you_are_and_links_home(world: World) -> None:
    response = login(world.agent_user).get("/reviews/")
    assert response.status_code == 403
    body = response.content.decode()
    assert "This page is for bank staff." in body
    assert "You are signed in as agent.one (Agent)." in body
    assert 'href="/"' in body


def test_ops_admin_may_look_at_a_case_but_not_act_on_it(world: World) -> None:
    referred = loan_finance(user=world.agent_user, order_id=world.order("10000.00").pk)
    review = Review.objects.get(loan=referred)
    client = login(world.ops)
    page = client.get(f"/reviews/{review.pk}/").content.decode()
    assert 'id="claim"' not in page
    assert client.post(f"/reviews/{review.pk}/claim/").status_code == 403
    review.refresh_from_db()
    assert review.claimed_by_id is None


NAV = {
    "agent": ({"portal", "orders", "loans"}, {"dashboard", "reviews", "audit"}),
    "enterprise_admin": ({"dashboard", "orders", "loans"}, {"portal", "reviews", "audit"}),
    "risk_reviewer": ({"reviews", "audit", "loans"}, {"portal", "dashboard", "orders"}),
    "risk_approver": ({"reviews", "audit", "loans"}, {"portal", "dashboard", "orders"}),
    "ops_admin": ({"dashboard", "reviews", "audit", "loans", "admin"}, {"portal", "orders"}),
}


@pytest.mark.parametrize("role", ROLES)
def test_navigation_shows_each_role_its_own_pages(world: World, role: str) -> None:
    response = login(world.user(role)).get("/loans/")
    body = response.content.decode()
    shown, hidden = NAV[role]
    for item in shown:
        assert f'data-nav="{item}"' in body, item
    for item in hidden:
        assert f'data-nav="{item}"' not in body, item


def test_sign_in_lands_on_the_role_home_and_sign_out_needs_a_post(world: World) -> None:
    client = Client()
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    response = client.post(
        "/accounts/login/", {"username": "risk.reviewer", "password": PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/reviews/"
    assert client.get("/accounts/logout/").status_code == 405
    out = client.post("/accounts/logout/")
    assert out.status_code == 302
    assert out["Location"] == "/accounts/login/"
    assert client.get("/reviews/").status_code == 302


def test_a_wrong_password_is_refused_with_a_message(world: World) -> None:
    response = Client().post("/accounts/login/", {"username": "agent.one", "password": "nope"})
    assert response.status_code == 200
    assert "did not match" in response.content.decode()


def test_password_change_needs_the_old_password_and_keeps_you_signed_in(world: World) -> None:
    client = login(world.agent_user)
    bad = client.post(
        "/accounts/password/",
        {
            "old_password": "wrong",
            "new_password1": "Fresh-pass-2027",
            "new_password2": "Fresh-pass-2027",
        },
    )
    assert bad.status_code == 200
    ok = client.post(
        "/accounts/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "Fresh-pass-2027",
            "new_password2": "Fresh-pass-2027",
        },
    )
    assert ok.status_code == 302
    assert ok["Location"] == "/accounts/password/done/"
    world.agent_user.refresh_from_db()
    assert world.agent_user.check_password("Fresh-pass-2027")
    assert client.get("/").status_code == 200


def test_forms_need_their_csrf_token(world: World) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.agent_user)
    order = world.order()
    response = client.post(f"/orders/{order.pk}/finance/", {"idempotency_key": "k-csrf"})
    assert response.status_code == 403
    assert "The form had expired" in response.content.decode()
    assert not order.loans.exists()


def test_unknown_api_addresses_keep_the_api_error_shape(db: Any) -> None:
    response = Client().get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "Not found.", "fields": {}}


def test_a_fragment_request_after_sign_out_reloads_the_sign_in_page(world: World) -> None:
    order = world.order()
    response = Client().get(
        f"/orders/{order.pk}/quote/",
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL="http://testserver/orders/?status=confirmed",
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/accounts/login/?next=%2Forders%2F%3Fstatus%3Dconfirmed"
    assert response.content == b""
