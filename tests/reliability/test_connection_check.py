"""The persistent connection's health check (Django's ``CONN_HEALTH_CHECKS`` on the project's
backend, ``scf.postgresql``): a connection the server ended is noticed before it fails a
request."""

from __future__ import annotations

import time
from typing import Any

import psycopg2
import pytest
from django.db import connections

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
