"""``scf.hotpath.execute_prepared``: a hot statement is prepared once per database session, again
on a new session (after a reconnect), and not at all when the setting turns it off; with it on,
the session plans a prepared statement once (a generic plan), not at every execution."""

from __future__ import annotations

import pytest
from django.db import connection

from scf.hotpath import execute_prepared

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SQL = "SELECT %s::int + 1"


def _ours() -> list[str]:
    """This session's prepared statements that are ``SQL``."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements WHERE name LIKE 'scf_%%'")
        return [row[0] for row in cursor.fetchall() if "$1::int + 1" in row[0]]


def _run(value: int) -> int:
    with connection.cursor() as cursor:
        execute_prepared(cursor, SQL, [value])
        return int(cursor.fetchone()[0])


def test_prepared_once_per_session_and_again_after_a_reconnect():
    assert _run(1) == 2 and _run(41) == 42
    assert len(_ours()) == 1
    connection.close()
    assert _ours() == []  # a new session knows none
    assert _run(2) == 3
    assert len(_ours()) == 1


def test_the_setting_turns_preparing_off(settings):
    settings.SCF_PREPARED_STATEMENTS = False
    connection.close()
    assert _run(5) == 6
    assert _ours() == []


def _plan_cache_mode() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        return str(cursor.fetchone()[0])


def _custom_plans() -> int:
    """How many times this session planned ``SQL`` afresh for its parameters (PostgreSQL 14+)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT custom_plans FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%$1::int + 1%"],
        )
        return int(cursor.fetchone()[0])


def test_a_prepared_statement_is_planned_once_per_session():
    connection.close()
    assert _plan_cache_mode() == "force_generic_plan"
    for value in range(8):
        assert _run(value) == value + 1
    assert _custom_plans() == 0


def test_without_prepared_statements_the_server_chooses_its_plans(settings):
    settings.SCF_PREPARED_STATEMENTS = False
    connection.close()
    assert _plan_cache_mode() == "auto"


def test_options_of_the_deployment_are_kept():
    options = connection.settings_dict.get("OPTIONS", {})
    connection.settings_dict["OPTIONS"] = {**options, "options": "-c work_mem=8MB"}
    try:
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute("SHOW work_mem")
            assert cursor.fetchone()[0] == "8MB"
        assert _plan_cache_mode() == "force_generic_plan"
    finally:
        connection.settings_dict["OPTIONS"] = options
        connection.close()


def test_generic_plans_have_their_own_switch(settings):
    settings.SCF_GENERIC_PLANS = False
    try:
        connection.close()
        assert _plan_cache_mode() == "auto"
        assert _run(3) == 4  # statements are still prepared
        assert len(_ours()) == 1
    finally:
        connection.close()


def _trigger_ignore_setting() -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('pgtrigger.ignore', true)")
        return cursor.fetchone()[0]


def test_a_direct_session_starts_with_nothing_ignored_by_the_triggers():
    """Present and empty: pgtrigger's triggers read it without raising (no subtransaction per
    row) and skip nothing (tests/lending/test_ledger.py: an unbalanced entry still fails)."""
    connection.close()
    assert _trigger_ignore_setting() == "{}"


def test_a_pooled_session_gets_no_startup_options(settings):
    settings.SCF_PREPARED_STATEMENTS = False
    try:
        connection.close()
        assert _trigger_ignore_setting() in (None, "")
    finally:
        connection.close()
