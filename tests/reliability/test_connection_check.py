"""The persistent connection's health check (``scf.postgresql``): no query while the connection
is quiet, and a connection the server ended is still noticed before it fails a request."""

from __future__ import annotations

import time
from typing import Any

import psycopg2
import pytest
from django.db import connections
from django.db.backends.postgresql import base as django_postgresql

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def wrapper() -> Any:
    conn = connections.create_connection("default")
    conn.ensure_connection()
    yield conn
    conn.close()


def _terminate(conn: Any) -> None:
    settings = conn.settings_dict
    other = psycopg2.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        password=settings["PASSWORD"] or None,
    )
    other.autocommit = True
    with other.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [conn.connection.info.backend_pid])
    other.close()


def test_the_backend_is_the_projects(wrapper):
    assert type(wrapper).__module__ == "scf.postgresql.base"
    assert wrapper.vendor == "postgresql"


def test_a_quiet_idle_connection_is_usable_without_a_query(wrapper, monkeypatch):
    def no_query(self: Any) -> bool:
        raise AssertionError("SELECT 1 sent for a quiet connection")

    monkeypatch.setattr(django_postgresql.DatabaseWrapper, "is_usable", no_query)
    assert wrapper.is_usable() is True


def test_a_connection_the_server_ended_is_not_usable(wrapper):
    _terminate(wrapper)
    deadline = time.monotonic() + 5
    while wrapper.is_usable() and time.monotonic() < deadline:
        time.sleep(0.05)  # the server's notice and close arrive asynchronously
    assert wrapper.is_usable() is False


def test_the_health_check_replaces_an_ended_connection_before_the_query(wrapper):
    """What the next request does: the check at its first query reconnects, the query works."""
    wrapper.close_at = None
    wrapper.settings_dict["CONN_HEALTH_CHECKS"] = True
    old_pid = wrapper.connection.info.backend_pid
    _terminate(wrapper)
    time.sleep(0.2)
    wrapper.health_check_done = False  # as at the start of a request
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != old_pid


def test_a_connection_inside_a_transaction_is_asked(wrapper, monkeypatch):
    """Not idle (a transaction is open): Django's own ``SELECT 1`` decides."""
    asked = []

    def recorded(self: Any) -> bool:
        asked.append(True)
        return True

    wrapper.connection.cursor().execute("BEGIN")
    monkeypatch.setattr(django_postgresql.DatabaseWrapper, "is_usable", recorded)
    assert wrapper.is_usable() is True
    assert asked == [True]
    wrapper.connection.rollback()
