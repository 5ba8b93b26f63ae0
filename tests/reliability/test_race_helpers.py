"""How many clients a race runs at once: never more than the server has connections free for.

A stock PostgreSQL allows 100 connections; a race that opened one per click failed with "too
many clients" there (503s). ``race_clients`` sizes every race from the server's own figures.
"""

from __future__ import annotations

import pytest
from django.db import connection

from .race_helpers import SPARE_CONNECTIONS, race_clients

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _setting(name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return int(cursor.fetchone()[0])


def test_a_race_wanting_more_clients_than_the_server_allows_gets_fewer():
    allowed = _setting("max_connections")
    # This test's own connection is open, and the spare ones and reserved slots stay free.
    most = allowed - _setting("superuser_reserved_connections") - 1 - SPARE_CONNECTIONS
    assert 0 < race_clients(allowed, floor=1) <= most
    assert race_clients(3, floor=1) == 3


def test_a_race_whose_floor_does_not_fit_fails_and_says_why():
    allowed = _setting("max_connections")
    with pytest.raises(pytest.fail.Exception, match="Raise max_connections") as failed:
        race_clients(allowed + 1, floor=allowed)
    assert f"needs at least {allowed} clients" in str(failed.value)
