from __future__ import annotations

from typing import Any

import pytest

from tests.lending.factories import CreditLineFactory, ProgramFactory
from tests.orders.factories import OrderFactory


@pytest.fixture
def program(enterprise: Any) -> Any:
    return ProgramFactory(enterprise=enterprise)


@pytest.fixture
def line(agent: Any, program: Any) -> Any:
    return CreditLineFactory(agent=agent, program=program)


@pytest.fixture
def order(agent: Any, enterprise: Any) -> Any:
    return OrderFactory(agent=agent, enterprise=enterprise)


def finance(client: Any, order_id: int, key: str = "k-1", **extra: Any) -> Any:
    return client.post(
        f"/api/v1/orders/{order_id}/finance/", {}, format="json", HTTP_IDEMPOTENCY_KEY=key, **extra
    )
