"""Sign-in throttling (django-axes): lockout after the limit, reset by a success, per user+address."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from tests.orders.factories import UserFactory

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
PASSWORD = "pw-for-tests-1"  # what UserFactory sets


def attempt(client: Client, username: str, password: str, **extra: Any) -> Any:
    return client.post(LOGIN, {"username": username, "password": password}, **extra)


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_limit_is_configured_to_a_sensible_default() -> None:
    assert 3 <= settings.AXES_FAILURE_LIMIT <= 10
    assert settings.AXES_COOLOFF_TIME.total_seconds() >= 60
    assert settings.AXES_RESET_ON_SUCCESS is True


def test_failures_up_to_the_limit_lock_the_account_out_with_429() -> None:
    user = UserFactory(role="risk_reviewer")
    client = Client()
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        response = attempt(client, user.username, "wrong-password")
        assert response.status_code == 200  # the form again, with its error
        assert b"did not match" in response.content
    locked = attempt(client, user.username, "wrong-password")
    assert locked.status_code == 429
    assert b'id="lockout"' in locked.content
    assert int(locked["Retry-After"]) == int(settings.AXES_COOLOFF_TIME.total_seconds())

    # Now even the right password is refused, and nobody is signed in.
    again = attempt(client, user.username, PASSWORD)
    assert again.status_code == 429
    assert not signed_in(client)


def test_a_successful_sign_in_before_the_limit_starts_the_count_again() -> None:
    user = UserFactory(role="risk_reviewer")
    limit = settings.AXES_FAILURE_LIMIT
    client = Client()
    for _ in range(limit - 1):
        assert attempt(client, user.username, "wrong-password").status_code == 200
    ok = attempt(client, user.username, PASSWORD)
    assert ok.status_code == 302 and signed_in(client)

    # Without the reset these would reach the limit on the first one.
    fresh = Client()
    for _ in range(limit - 1):
        assert attempt(fresh, user.username, "wrong-password").status_code == 200
    assert attempt(fresh, user.username, PASSWORD).status_code == 302
    assert signed_in(fresh)


def test_lockout_is_per_username_and_address() -> None:
    victim = UserFactory(role="risk_reviewer")
    other = UserFactory(role="risk_reviewer")
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        attempt(client, victim.username, "wrong-password")
    assert attempt(client, victim.username, PASSWORD).status_code == 429

    # Another user from the same address, and the same user from another address, still sign in.
    assert attempt(Client(), other.username, PASSWORD).status_code == 302
    elsewhere = Client(REMOTE_ADDR="10.20.30.40")
    assert attempt(elsewhere, victim.username, PASSWORD).status_code == 302


def test_programmatic_authenticate_without_a_request_still_works() -> None:
    from django.contrib.auth import authenticate

    user = UserFactory(role="risk_reviewer")
    assert authenticate(username=user.username, password=PASSWORD) == user
    assert authenticate(username=user.username, password="nope") is None
