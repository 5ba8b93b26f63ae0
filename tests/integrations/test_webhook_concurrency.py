"""The webhook under real concurrency on PostgreSQL: separate connections, threads at once."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from integrations.feed.signing import sign
from orders.models import FeedEvent, SalesOrder
from tests.orders.factories import order_payload

from .feed_helpers import WEBHOOK, event

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _run_concurrently(bodies: list[dict[str, Any]], enterprise: Any) -> list[tuple[int, str]]:
    barrier = threading.Barrier(len(bodies))
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def send(body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        ts = int(time.time())
        client = Client()
        barrier.wait()
        try:
            response = client.post(
                WEBHOOK,
                data=raw,
                content_type="application/json",
                HTTP_X_SCF_ENTERPRISE=enterprise.code,
                HTTP_X_SCF_TIMESTAMP=str(ts),
                HTTP_X_SCF_SIGNATURE=sign(enterprise.plain_webhook_secret, ts, raw),
            )
            with lock:
                results.append((response.status_code, response.json().get("status", "")))
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == len(bodies), "a request crashed in its thread"
    return results


def test_same_event_ten_times_concurrently_gives_one_order(enterprise, agent):
    body = event(order_payload(agent.code, external_id="SO-STORM"), "evt-storm")
    results = _run_concurrently([body] * 10, enterprise)
    assert all(code == 200 for code, _ in results)
    assert Counter(status for _, status in results) == {"applied": 1, "duplicate": 9}
    assert SalesOrder.objects.filter(external_id="SO-STORM").count() == 1
    assert FeedEvent.objects.filter(event_id="evt-storm", outcome="applied").count() == 1


def test_versions_out_of_order_concurrently_end_at_latest(enterprise, agent):
    versions = list(range(1, 11))
    random.Random(7).shuffle(versions)
    bodies = [
        event(
            order_payload(agent.code, external_id="SO-RACE", version=v, amount=f"{v}00.00"),
            f"evt-v{v}",
        )
        for v in versions
    ]
    results = _run_concurrently(bodies, enterprise)
    assert all(code == 200 for code, _ in results)
    stored = SalesOrder.objects.get(external_id="SO-RACE")
    assert stored.version == 10 and stored.amount == 1000
    assert sum(line.amount for line in stored.lines.all()) == 1000
