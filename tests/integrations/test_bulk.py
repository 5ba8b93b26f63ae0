"""The bulk order endpoint: API-key auth, all-or-nothing, set-based writes, versions."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from orders.models import FeedEvent, SalesOrder, SalesOrderLine
from tests.orders.factories import AgentFactory, EnterpriseFactory, order_payload

from .feed_helpers import post_bulk

pytestmark = pytest.mark.django_db


@pytest.fixture
def client() -> APIClient:
    return APIClient()


def test_bulk_creates_orders_and_reports_counts(client, enterprise, agent):
    orders = [order_payload(agent.code, external_id=f"B-{i}") for i in range(25)]
    response = post_bulk(client, enterprise.plain_api_key, {"orders": orders})
    assert response.status_code == 200, response.content
    assert response.json() == {"created": 25, "updated": 0, "stale": 0, "rejected": 0, "errors": []}
    assert SalesOrder.objects.filter(enterprise=enterprise).count() == 25
    assert SalesOrderLine.objects.count() == 50
    log = FeedEvent.objects.get(channel="bulk")
    assert log.outcome == "applied" and log.row_count == 25 and log.counts["created"] == 25


def test_bulk_update_and_stale_rows(client, enterprise, agent):
    first = [order_payload(agent.code, external_id=f"B-{i}", version=2) for i in range(3)]
    post_bulk(client, enterprise.plain_api_key, {"orders": first})
    second = [
        order_payload(agent.code, external_id="B-0", version=3, amount="77.00"),  # newer
        order_payload(agent.code, external_id="B-1", version=1),  # older: stale
        order_payload(agent.code, external_id="B-2", version=2),  # equal: stale
        order_payload(agent.code, external_id="B-3", version=1),  # new
    ]
    body = post_bulk(client, enterprise.plain_api_key, {"orders": second}).json()
    assert (body["created"], body["updated"], body["stale"]) == (1, 1, 2)
    assert SalesOrder.objects.get(external_id="B-0").amount == 77
    assert SalesOrder.objects.get(external_id="B-1").version == 2


def test_same_order_twice_in_one_batch_keeps_highest_version(client, enterprise, agent):
    orders = [
        order_payload(agent.code, external_id="D", version=5, amount="5.00"),
        order_payload(agent.code, external_id="D", version=7, amount="7.00"),
        order_payload(agent.code, external_id="D", version=6, amount="6.00"),
    ]
    body = post_bulk(client, enterprise.plain_api_key, {"orders": orders}).json()
    assert (body["created"], body["stale"]) == (1, 2)
    assert SalesOrder.objects.get(external_id="D").amount == 7


def test_one_bad_row_rejects_the_batch_naming_the_row(client, enterprise, agent):
    orders = [order_payload(agent.code, external_id=f"B-{i}") for i in range(5)]
    orders[3]["amount"] = "12.345"
    response = post_bulk(client, enterprise.plain_api_key, {"orders": orders})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_orders"
    assert [e["row"] for e in body["errors"]] == [3]
    assert body["errors"][0]["external_id"] == "B-3"
    assert "amount" in body["errors"][0]["fields"]
    assert SalesOrder.objects.count() == 0 and SalesOrderLine.objects.count() == 0
    assert FeedEvent.objects.get(channel="bulk").outcome == "rejected"


def test_partial_mode_applies_valid_rows(client, enterprise, agent):
    orders = [order_payload(agent.code, external_id=f"B-{i}") for i in range(3)]
    orders[1]["agent_code"] = "AG-NOPE"
    body = post_bulk(client, enterprise.plain_api_key, {"orders": orders, "atomic": False}).json()
    assert (body["created"], body["rejected"]) == (2, 1)
    assert body["errors"][0]["row"] == 1


@pytest.mark.parametrize(
    "header", ["", "Api-Key ", "Api-Key scfk_wrong", "Token abc", "Api-Key scfk_xxxxxxxxxxxxxxxx"]
)
def test_missing_or_bad_key_is_401(client, enterprise, agent, header):
    body = {"orders": [order_payload(agent.code)]}
    response = client.post(
        "/api/v1/integrations/orders/bulk/", body, format="json", HTTP_AUTHORIZATION=header
    )
    assert response.status_code == 401
    assert SalesOrder.objects.count() == 0


def test_key_posting_for_another_enterprise_is_403(client, enterprise, agent):
    other = EnterpriseFactory()
    body = {"enterprise": other.code, "orders": [order_payload(agent.code)]}
    response = post_bulk(client, enterprise.plain_api_key, body)
    assert response.status_code == 403
    assert response.json()["code"] == "enterprise_mismatch"
    row = order_payload(agent.code)
    row["enterprise_code"] = other.code
    assert post_bulk(client, enterprise.plain_api_key, {"orders": [row]}).status_code == 403
    assert SalesOrder.objects.count() == 0


def test_other_enterprises_agents_are_unknown_to_this_key(client, enterprise):
    other = EnterpriseFactory()
    their_agent = AgentFactory(enterprises=[other])
    response = post_bulk(
        client, enterprise.plain_api_key, {"orders": [order_payload(their_agent.code)]}
    )
    assert response.status_code == 422


def test_too_many_or_no_orders_is_422(client, enterprise, agent, settings):
    settings.ORDER_BULK_MAX_ROWS = 3
    orders = [order_payload(agent.code) for _ in range(4)]
    response = post_bulk(client, enterprise.plain_api_key, {"orders": orders})
    assert response.status_code == 422 and response.json()["code"] == "too_many_orders"
    assert post_bulk(client, enterprise.plain_api_key, {"orders": []}).status_code == 422
    assert post_bulk(client, enterprise.plain_api_key, {"rows": []}).status_code == 422


def test_malformed_json_and_nan_are_400(client, enterprise):
    assert post_bulk(client, enterprise.plain_api_key, b"{not json").status_code == 400
    assert post_bulk(client, enterprise.plain_api_key, b'{"orders": [NaN]}').status_code == 400


def test_large_batch_creates_then_updates_with_lines_and_raw_payload(client, enterprise, agent):
    """Big enough for the PostgreSQL COPY path; odd characters must survive it."""
    orders = [order_payload(agent.code, external_id=f"BIG-{i}\\x", version=1) for i in range(300)]
    orders[0]["lines"][0]["sku"] = "tab\there\nnewline\\slash 中文"
    body = post_bulk(client, enterprise.plain_api_key, {"orders": orders}).json()
    assert (body["created"], body["updated"]) == (300, 0)
    first = SalesOrder.objects.get(external_id="BIG-0\\x")
    assert first.raw_payload == orders[0]
    assert first.lines.get(line_no=1).sku == "tab\there\nnewline\\slash 中文"
    newer = [
        order_payload(agent.code, external_id=f"BIG-{i}\\x", version=2, amount="5.00")
        for i in range(250)
    ]
    body = post_bulk(client, enterprise.plain_api_key, {"orders": newer}).json()
    assert (body["created"], body["updated"], body["stale"]) == (0, 250, 0)
    assert SalesOrder.objects.filter(amount=5).count() == 250
    assert SalesOrderLine.objects.count() == 600
    assert sum(line.amount for line in SalesOrderLine.objects.filter(order=first)) == 5
