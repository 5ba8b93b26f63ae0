"""Shared fixtures, and the rules for tests that need PostgreSQL or Redis.

Tests marked ``postgres`` or ``redis`` are skipped (and counted) when those services are not
configured. With ``SCF_FORBID_SKIPS=1`` (CI) any skipped test fails the run.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.orders.factories import (
    AgentFactory,
    EnterpriseFactory,
    UserFactory,
)

POSTGRES = settings.IS_POSTGRES
REDIS_URL = os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL", "")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "postgres" in item.keywords and not POSTGRES:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)"))
        if "redis" in item.keywords and not REDIS_URL:
            item.add_marker(pytest.mark.skip(reason="needs Redis (set REDIS_URL)"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("SCF_FORBID_SKIPS") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped:
        print(f"\nSCF_FORBID_SKIPS: {skipped} tests were skipped; failing the run.")
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter: Any) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} tests skipped (PostgreSQL: {'yes' if POSTGRES else 'no'}, "
            f"Redis: {'yes' if REDIS_URL else 'no'})"
        )


@pytest.fixture
def enterprise(db: Any) -> Any:
    return EnterpriseFactory()


@pytest.fixture
def agent(enterprise: Any) -> Any:
    return AgentFactory(enterprises=[enterprise])


def client_for(user: Any) -> APIClient:
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def agent_user(agent: Any) -> Any:
    return UserFactory(role="agent", agent=agent)


@pytest.fixture
def agent_client(agent_user: Any) -> APIClient:
    return client_for(agent_user)


@pytest.fixture
def enterprise_admin(enterprise: Any) -> Any:
    return UserFactory(role="enterprise_admin", enterprise=enterprise)


@pytest.fixture
def ops_user(db: Any) -> Any:
    return UserFactory(role="ops_admin")
