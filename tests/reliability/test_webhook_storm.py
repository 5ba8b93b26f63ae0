"""Scenario 10, webhook storm: duplicates and out-of-order versions of one order, all at once.

``tests/integrations/test_webhook_concurrency.py`` sends one event 10 times at once, and 10
versions at once. What it leaves out is the storm a retrying sales system really makes: every
version *and* its retries racing together, a cancellation among them, and many orders at once.
Each request is signed, on its own thread and PostgreSQL connection, released by a barrier:

* 5 versions x 10 copies of each event (50 requests), shuffled, over 3 seeds: 1 order at the
  latest version with its lines, every reply 200, and per event exactly one reply that is not
  ``duplicate`` (the latest version's is ``applied``);
* upserts v2..v5 racing a cancellation v6, each sent 4 times: cancelled at version 6;
* 10 orders x 4 versions (40 requests): every order at its latest version.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from integrations.feed.signing import sign
from orders.models import FeedEvent, SalesOrder
from tests.integrations.feed_helpers import WEBHOOK, event
from tests.orders.factories import order_payload

from .race_helpers import run_at_once, server_errors

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# Where the server has fewer connections free than requests, they go ten or more at a time: still
# every version and several of its copies racing.
STORM_FLOOR = 10


def _send(enterprise: Any, body: dict[str, Any]) -> Any:
    raw = json.dumps(body).encode()
    client = Client()

    def call() -> Any:
        ts = int(time.time())
        return client.post(
            WEBHOOK,
            data=raw,
            content_type="application/json",
            HTTP_X_SCF_ENTERPRISE=enterprise.code,
            HTTP_X_SCF_TIMESTAMP=str(ts),
            HTTP_X_SCF_SIGNATURE=sign(enterprise.plain_webhook_secret, ts, raw),
        )

    return call


def _storm(enterprise: Any, bodies: list[dict[str, Any]], seed: int) -> list[tuple[str, str]]:
    """Send every body at once in a seeded order; (event id, reply status) per request."""
    random.Random(seed).shuffle(bodies)
    responses = run_at_once([_send(enterprise, body) for body in bodies], floor=STORM_FLOOR)
    assert server_errors(responses) == []
    assert [r.status_code for r in responses] == [200] * len(bodies), [
        r.content[:200] for r in responses if r.status_code != 200
    ]
    return [(b["event_id"], r.json()["status"]) for b, r in zip(bodies, responses, strict=True)]


def _one_reply_per_event_is_not_a_duplicate(replies: list[tuple[str, str]]) -> dict[str, str]:
    by_event: dict[str, Counter[str]] = defaultdict(Counter)
    for event_id, status in replies:
        assert status in ("applied", "duplicate", "stale"), status
        by_event[event_id][status] += 1
    outcome = {}
    for event_id, statuses in by_event.items():
        assert statuses["applied"] + statuses["stale"] == 1, (event_id, statuses)
        outcome[event_id] = "applied" if statuses["applied"] else "stale"
    return outcome


def _version(agent: Any, external_id: str, version: int) -> dict[str, Any]:
    order = order_payload(
        agent.code, external_id=external_id, version=version, amount=f"{version}000.00"
    )
    return event(order, f"{external_id}-v{version}")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_version_and_its_retries_at_once_end_at_the_latest(enterprise, agent, seed):
    external_id = f"SO-STORM-{seed}"
    bodies = [_version(agent, external_id, v) for v in range(1, 6) for _ in range(10)]
    outcome = _one_reply_per_event_is_not_a_duplicate(_storm(enterprise, bodies, seed))
    assert outcome[f"{external_id}-v5"] == "applied"
    stored = SalesOrder.objects.get(external_id=external_id)
    assert (stored.version, stored.amount) == (5, Decimal("5000.00"))
    assert sum(line.amount for line in stored.lines.all()) == stored.amount
    assert SalesOrder.objects.count() == 1
    recorded = Counter(FeedEvent.objects.values_list("outcome", flat=True))
    assert recorded["duplicate"] == 45 and recorded["applied"] + recorded["stale"] == 5


def test_a_cancellation_racing_the_upserts_it_follows_wins(enterprise, agent):
    # The order exists (a cancellation of an unknown order is a 422 by contract), then v2..v5
    # and the cancellation v6 race, each sent 4 times.
    assert _storm(enterprise, [_version(agent, "SO-CXL", 1)], 0) == [("SO-CXL-v1", "applied")]
    bodies = [_version(agent, "SO-CXL", v) for v in range(2, 6) for _ in range(4)]
    cancel = event({"external_id": "SO-CXL", "version": 6}, "SO-CXL-cancel", "order.cancelled")
    bodies += [cancel] * 4
    outcome = _one_reply_per_event_is_not_a_duplicate(_storm(enterprise, bodies, 7))
    assert outcome["SO-CXL-cancel"] == "applied"  # the highest version is never stale
    stored = SalesOrder.objects.get(external_id="SO-CXL")
    assert (stored.status, stored.version) == ("cancelled", 6)


def test_many_orders_each_with_out_of_order_versions_all_end_at_their_latest(enterprise, agent):
    ids = [f"SO-MANY-{i}" for i in range(10)]
    bodies = [_version(agent, external_id, v) for external_id in ids for v in range(1, 5)]
    _one_reply_per_event_is_not_a_duplicate(_storm(enterprise, bodies, 11))
    stored = {o.external_id: o for o in SalesOrder.objects.all()}
    assert sorted(stored) == sorted(ids)
    assert {(o.version, o.amount) for o in stored.values()} == {(4, Decimal("4000.00"))}
