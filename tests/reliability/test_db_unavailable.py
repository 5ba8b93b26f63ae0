"""Scenario 7 (the CI part): the database goes away under a request.

The client gets a clean 503 ``service_unavailable`` in the API's error shape with
``Retry-After`` (not a 500, not a hang), nothing is half-written (the claim of the
Idempotency-Key, the loan, the reservation and the stored reply are one transaction), and the
same request retried with the same key after recovery makes exactly one loan. The restart of a
real PostgreSQL under load is ``chaos/pg_restart.py``.

Between requests the tests call ``close_old_connections``, as Django's request handler does at
the start of every request (the test client leaves it out); with ``CONN_HEALTH_CHECKS`` that is
what drops a connection the server has closed.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import psycopg2
import pytest
from django.conf import settings
from django.db import OperationalError, close_old_connections, connection
from django.db.backends.utils import CursorWrapper

from lending.models import CreditLine, Loan
from lending.services import finance_hotpath
from lending.services.book_check import book_check
from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.orders.factories import OrderFactory
from tests.reliability import workers
from tests.reliability.workers import (
    FAST_RETRIES,
    Sweeper,
    approve_loans,
    assert_each_paid_exactly_once,
    free_port,
    wait_until_active,
)

broker = workers.broker  # fixtures
start_worker = workers.start_worker


@pytest.fixture
def order(agent: Any, enterprise: Any) -> Any:
    program = ProgramFactory(enterprise=enterprise)
    CreditLineFactory(agent=agent, program=program)
    return OrderFactory(agent=agent, enterprise=enterprise)


def finance(client: Any, order: Any, key: str) -> Any:
    return client.post(f"/api/v1/orders/{order.pk}/finance/", HTTP_IDEMPOTENCY_KEY=key)


def assert_clean_503(response: Any) -> None:
    assert response.status_code == 503
    assert response["Retry-After"].isdigit() and int(response["Retry-After"]) > 0
    body = response.json()
    assert set(body) == {"code", "detail", "fields"} and body["code"] == "service_unavailable"
    assert "OperationalError" not in response.content.decode()


@pytest.mark.django_db
def test_a_database_error_on_any_query_is_a_503_with_retry_after(agent_client, order, monkeypatch):
    def dead(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(CursorWrapper, "execute", dead)
    assert_clean_503(finance(agent_client, order, "k-1"))
    assert_clean_503(agent_client.get("/api/v1/loans/"))


@pytest.mark.django_db
def test_a_page_whose_database_is_down_is_a_503_not_a_500(agent_user, order, monkeypatch):
    from django.test import Client

    client = Client(raise_request_exception=False)
    client.force_login(agent_user)
    assert client.get("/").status_code == 200

    def dead(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(CursorWrapper, "execute", dead)
    response = client.get("/")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "retry" in response.content.decode() and "Operational" not in response.content.decode()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_refused_connection_is_a_fast_503_and_the_retry_makes_one_loan(agent_client, order):
    saved = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = str(free_port())  # nothing listens there: refused
    try:
        started = time.monotonic()
        assert_clean_503(finance(agent_client, order, "retry-me"))
        assert time.monotonic() - started < 5
    finally:
        connection.settings_dict["PORT"] = saved
        connection.close()
    first = finance(agent_client, order, "retry-me")
    again = finance(agent_client, order, "retry-me")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert Loan.objects.filter(order=order).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_server_dropping_the_connection_mid_transaction_leaves_nothing_behind(
    agent_client, order, monkeypatch
):
    """PostgreSQL ends the request's session (as a restart does) after the loan, its
    reservation and the reply were written and before the commit: 503, no loan, no
    reservation, no key; the retry makes one."""
    write = finance_hotpath.rows_write

    def killed_first(rows: Any) -> bool:
        monkeypatch.setattr(finance_hotpath, "rows_write", write)
        written = write(rows)
        assert written and Loan.objects.filter(order=order).count() == 1  # not committed yet
        other = psycopg2.connect(
            dbname=connection.settings_dict["NAME"],
            user=connection.settings_dict["USER"],
            host=connection.settings_dict["HOST"] or "127.0.0.1",
            port=connection.settings_dict["PORT"] or 5432,
            password=connection.settings_dict["PASSWORD"] or None,
        )
        other.autocommit = True
        with other.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid]
            )
        other.close()
        return written

    monkeypatch.setattr(finance_hotpath, "rows_write", killed_first)
    assert_clean_503(finance(agent_client, order, "mid-flight"))
    close_old_connections()  # the next request's start: the dead connection is dropped
    assert Loan.objects.filter(order=order).count() == 0
    assert CreditLine.objects.get().reserved == Decimal("0.00")
    first = finance(agent_client, order, "mid-flight")
    assert first.status_code == 201, first.content
    assert finance(agent_client, order, "mid-flight").json() == first.json()
    assert Loan.objects.filter(order=order).count() == 1
    assert book_check() == []


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_whose_connections_the_server_dropped_reconnects(start_worker, broker):
    """What a PostgreSQL restart does to a worker, without restarting the shared server: every
    session of the worker is terminated between tasks. Found by the soak: the worker kept its
    dead connection (``CELERY_DB_REUSE_MAX``) and failed every task after a restart; now it
    drops it before the next task and pays on."""
    worker = start_worker({"SANDBOX_BANK": {}, "DISBURSEMENT_LEASE_SECONDS": 2, **FAST_RETRIES})
    first = approve_loans(10, agents=2)
    wait_until_active(first, worker)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 1  # the worker's pool processes were connected
    then = approve_loans(30, agents=2)
    wait_until_active(then, worker, tick=Sweeper(broker, every=2.0), deadline=30)
    assert_each_paid_exactly_once(first + then)


@pytest.mark.postgres
def test_postgres_connections_give_up_in_seconds():
    """A database that does not answer fails the request instead of hanging a web worker."""
    options = settings.DATABASES["default"]["OPTIONS"]
    assert 0 < int(options["connect_timeout"]) <= 10
    assert options["keepalives"] == 1
    assert settings.DATABASES["default"]["CONN_HEALTH_CHECKS"] is True
