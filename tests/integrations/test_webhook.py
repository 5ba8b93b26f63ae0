"""The signed order webhook: signatures, clock window, validation, duplicates and versions."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from rest_framework.test import APIClient

from orders.models import FeedEvent, SalesOrder, SalesOrderLine
from tests.orders.factories import AgentFactory, EnterpriseFactory, order_payload

from .feed_helpers import event, post_signed

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> APIClient:
    return APIClient()


def test_valid_event_creates_order_with_lines_and_raw_payload(client, enterprise, agent):
    order = order_payload(agent.code, external_id="SO-1", amount="10000.00")
    response = post_signed(client, enterprise, event(order, "evt-1"))
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "applied"}
    stored = SalesOrder.objects.get(enterprise=enterprise, external_id="SO-1")
    assert stored.amount == 10000 and stored.agent == agent and stored.version == 1
    assert stored.raw_payload == order
    assert list(stored.lines.values_list("sku", flat=True)) == ["X1", "X2"]
    assert FeedEvent.objects.get(event_id="evt-1").outcome == "applied"


@pytest.mark.parametrize(
    "change",
    [
        {"signature": "sha256=" + "0" * 64},
        {"signature": ""},
        {"secret": "whsec_not-the-right-secret"},
        {"skew": -301},
        {"skew": 301},
        {"code": "NO-SUCH-ENTERPRISE"},
    ],
    ids=["forged", "missing", "wrong-secret", "too-old", "too-new", "unknown-enterprise"],
)
def test_bad_signature_or_clock_is_401_and_writes_nothing(client, enterprise, agent, change):
    body = event(order_payload(agent.code), "evt-bad")
    if "skew" in change:
        change = {"timestamp": int(time.time()) + change["skew"]}
    response = post_signed(client, enterprise, body, **change)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"
    assert SalesOrder.objects.count() == 0
    assert FeedEvent.objects.count() == 0


def test_another_enterprises_secret_is_401(client, enterprise, agent):
    other = EnterpriseFactory()
    body = event(order_payload(agent.code), "evt-x")
    response = post_signed(client, enterprise, body, secret=other.plain_webhook_secret)
    assert response.status_code == 401
    assert SalesOrder.objects.count() == 0


def test_body_changed_after_signing_is_401(client, enterprise, agent):
    raw = json.dumps(event(order_payload(agent.code, amount="100.00"), "evt-2")).encode()
    ts = int(time.time())
    from integrations.feed.signing import sign

    signature = sign(enterprise.plain_webhook_secret, ts, raw)
    tampered = raw.replace(b'"100.00"', b'"900.00"')
    response = post_signed(client, enterprise, tampered, timestamp=ts, signature=signature)
    assert response.status_code == 401
    assert SalesOrder.objects.count() == 0


def test_window_edge_inside_300_seconds_is_accepted(client, enterprise, agent):
    body = event(order_payload(agent.code), "evt-edge")
    response = post_signed(client, enterprise, body, timestamp=int(time.time()) - 290)
    assert response.status_code == 200


def test_malformed_json_is_400(client, enterprise):
    response = post_signed(client, enterprise, b'{"event_id": "e1", "type": ')
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
    assert SalesOrder.objects.count() == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "-5.00"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "10000.001"}, "amount"),
        ({"amount": 10000.0}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"amount": "9999.00"}, "amount"),
        ({"agent_code": "AG-UNKNOWN"}, "agent_code"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "cny"}, "currency"),
        ({"status": "lost"}, "status"),
        ({"order_date": "20-11-2026"}, "order_date"),
        ({"version": 0}, "version"),
        ({"version": "3"}, "version"),
        ({"lines": []}, "lines"),
    ],
    ids=lambda v: str(v),
)
def test_invalid_order_is_422_with_field_errors_and_writes_no_order(
    client, enterprise, agent, change, field
):
    order = order_payload(agent.code, amount="10000.00")
    order.update(change)
    response = post_signed(client, enterprise, event(order, "evt-invalid"))
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["code"] == "invalid_order"
    assert field in body["fields"]
    assert SalesOrder.objects.count() == 0
    rejected = FeedEvent.objects.get()
    assert rejected.outcome == "rejected" and rejected.error_code == "invalid_order"


def test_agent_of_another_enterprise_is_unknown(client, enterprise):
    stranger = AgentFactory(enterprises=[EnterpriseFactory()])
    response = post_signed(client, enterprise, event(order_payload(stranger.code), "evt-s"))
    assert response.status_code == 422
    assert "agent_code" in response.json()["fields"]


def test_order_for_another_enterprise_is_403(client, enterprise, agent):
    other = EnterpriseFactory()
    order = order_payload(agent.code)
    order["enterprise_code"] = other.code
    response = post_signed(client, enterprise, event(order, "evt-o"))
    assert response.status_code == 403
    assert response.json()["code"] == "enterprise_mismatch"
    assert SalesOrder.objects.count() == 0


def test_bad_event_envelope_is_422(client, enterprise, agent):
    response = post_signed(client, enterprise, {"type": "order.deleted", "order": []})
    assert response.status_code == 422
    assert set(response.json()["fields"]) == {"event_id", "type", "order"}


def test_same_event_ten_times_gives_one_order(client, enterprise, agent):
    body = event(order_payload(agent.code, external_id="SO-DUP"), "evt-dup")
    statuses = [post_signed(client, enterprise, body).json()["status"] for _ in range(10)]
    assert statuses == ["applied"] + ["duplicate"] * 9
    assert SalesOrder.objects.filter(external_id="SO-DUP").count() == 1
    assert FeedEvent.objects.filter(outcome="duplicate").count() == 9


def test_older_version_after_newer_is_stale_and_changes_nothing(client, enterprise, agent):
    v3 = order_payload(agent.code, external_id="SO-V", amount="300.00", version=3)
    v2 = order_payload(agent.code, external_id="SO-V", amount="200.00", version=2)
    assert post_signed(client, enterprise, event(v3, "e-v3")).json() == {"status": "applied"}
    assert post_signed(client, enterprise, event(v2, "e-v2")).json() == {"status": "stale"}
    stored = SalesOrder.objects.get(external_id="SO-V")
    assert stored.version == 3 and stored.amount == 300
    assert sum(line.amount for line in stored.lines.all()) == 300
    assert FeedEvent.objects.get(event_id="e-v2").outcome == "stale"


def test_newer_version_replaces_order_and_lines(client, enterprise, agent):
    v1 = order_payload(agent.code, external_id="SO-N", amount="100.00", version=1)
    v2 = order_payload(agent.code, external_id="SO-N", amount="250.00", version=2, status="shipped")
    v2["lines"] = [{"sku": "Z9", "quantity": "2.5", "unit_price": "100.00"}]
    post_signed(client, enterprise, event(v1, "e1"))
    assert post_signed(client, enterprise, event(v2, "e2")).json() == {"status": "applied"}
    stored = SalesOrder.objects.get(external_id="SO-N")
    assert (stored.amount, stored.status, stored.version) == (250, "shipped", 2)
    assert list(SalesOrderLine.objects.filter(order=stored).values_list("sku", flat=True)) == ["Z9"]


def test_cancel_event_with_only_id_and_version(client, enterprise, agent):
    post_signed(client, enterprise, event(order_payload(agent.code, external_id="SO-C"), "e1"))
    cancel = {"external_id": "SO-C", "version": 2}
    response = post_signed(client, enterprise, event(cancel, "e2", "order.cancelled"))
    assert response.json() == {"status": "applied"}
    assert SalesOrder.objects.get(external_id="SO-C").status == "cancelled"
    stale = post_signed(
        client, enterprise, event({"external_id": "SO-C", "version": 1}, "e3", "order.cancelled")
    )
    assert stale.json() == {"status": "stale"}


def test_cancel_of_unknown_order_is_422_and_recorded(client, enterprise):
    cancel = {"external_id": "SO-NONE", "version": 2}
    response = post_signed(client, enterprise, event(cancel, "e-none", "order.cancelled"))
    assert response.status_code == 422
    assert FeedEvent.objects.get(event_id="e-none").outcome == "rejected"


def test_rejected_event_id_can_be_resent_corrected(client, enterprise, agent):
    bad = order_payload(agent.code, external_id="SO-R", amount="1.00")
    bad["currency"] = "XXX1"
    assert post_signed(client, enterprise, event(bad, "e-r")).status_code == 422
    good = order_payload(agent.code, external_id="SO-R", amount="1.00")
    assert post_signed(client, enterprise, event(good, "e-r")).json() == {"status": "applied"}


def test_rotated_secret_replaces_the_old_one(client, enterprise, agent):
    from orders.services.parties import enterprise_credentials_rotate

    old = enterprise.plain_webhook_secret
    new = enterprise_credentials_rotate(enterprise=enterprise)
    body = event(order_payload(agent.code), "e-rot")
    assert post_signed(client, enterprise, body, secret=old).status_code == 401
    assert post_signed(client, enterprise, body, secret=new.webhook_secret).status_code == 200


def test_secrets_are_not_stored_in_the_clear(enterprise: Any):
    enterprise.refresh_from_db()
    assert enterprise.plain_webhook_secret not in enterprise.webhook_secret_encrypted
    assert enterprise.plain_api_key not in enterprise.api_key_digest
    assert len(enterprise.api_key_digest) == 64
