"""``release.available`` and ``claim.raised``: announced once per change, delivered signed.

The receiver is the real HTTP server of ``tests.integrations.test_events``.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal as D
from typing import Any

import pytest

from integrations.events import event_deliver
from integrations.feed.signing import sign
from integrations.models import OutboundEvent, WebhookEndpoint
from integrations.tripartite.events import tripartite_events_sweep
from lending.models import GoodsHold
from scf import crypto
from tests.integrations.test_events import SECRET, Receiver, receiver  # noqa: F401 (fixture)
from tests.lending.active_loans import money_line
from tests.lending.test_releases import repay
from tests.lending.tripartite_makers import tripartite_loan

pytestmark = pytest.mark.django_db
VALUE_DATE = dt.date(2026, 11, 2)


@pytest.fixture
def endpoint(enterprise: Any, receiver: Receiver) -> WebhookEndpoint:  # noqa: F811
    return WebhookEndpoint.objects.create(
        enterprise=enterprise, url=receiver.url, secret_encrypted=crypto.encrypt(SECRET)
    )


def payloads(type_: str) -> list[dict[str, str]]:
    return [e.payload for e in OutboundEvent.objects.filter(type=type_).order_by("pk")]


def test_each_repayment_announces_the_goods_it_makes_releasable_once(
    agent: Any,
    enterprise: Any,
    endpoint: WebhookEndpoint,
    receiver: Receiver,  # noqa: F811
) -> None:
    loan = tripartite_loan(
        money_line(agent, enterprise), order_value="100000.00", value_date=VALUE_DATE
    )
    assert tripartite_events_sweep() == 1  # the margin's worth, at once
    assert tripartite_events_sweep() == 0
    repay(loan, "20000.00", "RP-EV-1")
    assert tripartite_events_sweep() == 1
    assert tripartite_events_sweep() == 0
    announced = payloads("release.available")
    assert [(p["releasable_value"], p["available_value"]) for p in announced] == [
        ("30000.00", "30000.00"),
        ("50000.00", "50000.00"),
    ]
    assert announced[0]["loan_id"] == str(loan.pk)
    event = OutboundEvent.objects.filter(type="release.available").order_by("pk").last()
    assert event is not None
    assert event_deliver(event_id=event.event_id).outcome == "delivered"
    got = receiver.received[-1]
    assert got.headers["X-SCF-Event-Type"] == "release.available"
    expected = sign(SECRET, int(got.headers["X-SCF-Timestamp"]), got.body)
    assert got.headers["X-SCF-Signature"] == expected
    assert json.loads(got.body)["data"]["releasable_value"] == "50000.00"


def test_nothing_is_announced_without_an_endpoint_or_once_all_is_released(
    agent: Any, enterprise: Any
) -> None:
    loan = tripartite_loan(
        money_line(agent, enterprise), order_value="1000.00", value_date=VALUE_DATE
    )
    assert tripartite_events_sweep() == 0
    WebhookEndpoint.objects.create(
        enterprise=enterprise, url="http://127.0.0.1:9/x", secret_encrypted=crypto.encrypt(SECRET)
    )
    GoodsHold.objects.filter(loan=loan).update(released_value=D("300.00"))
    assert tripartite_events_sweep() == 0
