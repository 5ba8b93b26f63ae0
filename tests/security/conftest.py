from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.orders.factories import AgentFactory, OrderFactory, UserFactory


@pytest.fixture
def signed_in_agent(db: Any) -> Any:
    """(client signed in by session with CSRF checks on, the agent's user, an open order)."""
    program = ProgramFactory()
    agent = AgentFactory(enterprises=[program.enterprise])
    CreditLineFactory(agent=agent, program=program)
    user = UserFactory(role="agent", agent=agent)
    order = OrderFactory(agent=agent, enterprise=program.enterprise)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client, user, order
