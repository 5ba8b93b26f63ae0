"""The password-change form: wrong current passwords count as failed sign-ins (django-axes), and
a change replaces the user's API token.

A session holder could guess the current password there without limit: django-axes counted
sign-ins only. Now each wrong guess counts for the same username and address as a failed
sign-in, so the same limit, cool-off and lockout page (429) apply to both doors together.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.orders.factories import UserFactory

pytestmark = pytest.mark.django_db

CHANGE = "/accounts/password/"
LOGIN = "/accounts/login/"
PASSWORD = "pw-for-tests-1"  # what UserFactory sets
NEW_PASSWORD = "a-Long-new-passphrase-42"


def change(client: Client, old: str, new: str = NEW_PASSWORD) -> Any:
    return client.post(CHANGE, {"old_password": old, "new_password1": new, "new_password2": new})


def signed_in_client(user: Any) -> Client:
    client = Client()
    assert client.post(LOGIN, {"username": user.username, "password": PASSWORD}).status_code == 302
    return client


def test_wrong_current_passwords_lock_the_form_out_at_the_sign_in_limit() -> None:
    user = UserFactory(role="risk_reviewer")
    client = signed_in_client(user)
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        response = change(client, "wrong-guess")
        assert response.status_code == 200  # the form again, with its error
        assert b"old_password" in response.content
    locked = change(client, "wrong-guess")
    assert locked.status_code == 429
    assert b'id="lockout"' in locked.content
    assert int(locked["Retry-After"]) == int(settings.AXES_COOLOFF_TIME.total_seconds())

    # The right password changes nothing now; the form itself is locked too.
    assert change(client, PASSWORD).status_code == 429
    assert client.get(CHANGE).status_code == 429
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    # And the same pair cannot sign in either: it is one count.
    again = Client().post(LOGIN, {"username": user.username, "password": PASSWORD})
    assert again.status_code == 429


def test_failed_sign_ins_and_wrong_current_passwords_share_one_count() -> None:
    user = UserFactory(role="risk_reviewer")
    client = signed_in_client(user)
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        Client().post(LOGIN, {"username": user.username, "password": "wrong"})
    assert change(client, "wrong-guess").status_code == 429


def test_the_count_is_per_user_and_address() -> None:
    user = UserFactory(role="risk_reviewer")
    client = signed_in_client(user)
    for _ in range(settings.AXES_FAILURE_LIMIT):
        change(client, "wrong-guess")
    other = UserFactory(role="risk_reviewer")
    assert change(signed_in_client(other), PASSWORD).status_code == 302
    elsewhere = Client(REMOTE_ADDR="10.20.30.40")
    elsewhere.force_login(user)
    assert change(elsewhere, PASSWORD).status_code == 302


def test_a_password_change_replaces_the_api_token_and_keeps_this_session() -> None:
    user = UserFactory(role="ops_admin")
    old_key = Token.objects.create(user=user).key
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {old_key}")
    assert api.get("/api/v1/orders/").status_code == 200
    client = signed_in_client(user)

    response = change(client, PASSWORD)

    assert response.status_code == 302 and response["Location"] == "/accounts/password/done/"
    new = Token.objects.get(user=user)
    assert new.key != old_key
    assert api.get("/api/v1/orders/").status_code == 401
    api.credentials(HTTP_AUTHORIZATION=f"Token {new.key}")
    assert api.get("/api/v1/orders/").status_code == 200
    assert client.get("/accounts/password/done/").status_code == 200  # still signed in


def test_a_user_without_a_token_is_not_given_one() -> None:
    user = UserFactory(role="ops_admin")
    assert change(signed_in_client(user), PASSWORD).status_code == 302
    assert not Token.objects.filter(user=user).exists()


def test_the_admin_password_change_goes_to_the_counted_form() -> None:
    user = UserFactory(role="ops_admin", is_staff=True)
    client = signed_in_client(user)
    response = client.get("/admin/password_change/")
    assert response.status_code == 302 and response["Location"] == CHANGE
    posted = client.post(
        "/admin/password_change/",
        {"old_password": "wrong", "new_password1": "x", "new_password2": "x"},
    )
    assert posted.status_code in (302, 307, 308) and posted["Location"] == CHANGE
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
