"""Order dates in the future: the feed refuses an order dated past today plus
``ORDER_DATE_MAX_FUTURE_DAYS`` on every channel (422, the field named), nothing written.

An order dated 9999-12-31 used to be accepted and could then be financed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from orders.models import FeedChannel, SalesOrder
from orders.services.ingest import orders_ingest
from scf import clock
from tests.conftest import client_for
from tests.orders.factories import order_payload

from .feed_helpers import event, post_bulk, post_signed
from .test_csv import csv_bytes, line, upload

pytestmark = pytest.mark.django_db


def today() -> dt.date:
    return clock.business_date(django_settings.TIME_ZONE)


def days_ahead(days: int) -> str:
    return (today() + dt.timedelta(days=days)).isoformat()


def test_the_tolerance_is_small() -> None:
    assert 0 <= django_settings.ORDER_DATE_MAX_FUTURE_DAYS <= 2


@pytest.mark.parametrize("order_date", ["9999-12-31", "far", "past-tolerance"])
def test_webhook_refuses_an_order_dated_in_the_future(
    enterprise: Any, agent: Any, settings: Any, order_date: str
) -> None:
    tolerance = settings.ORDER_DATE_MAX_FUTURE_DAYS
    date = {"far": days_ahead(400), "past-tolerance": days_ahead(tolerance + 1)}.get(
        order_date, order_date
    )
    order = order_payload(agent.code, external_id="SO-FUT", order_date=date)
    response = post_signed(APIClient(), enterprise, event(order, "evt-fut"))
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["code"] == "invalid_order" and "order_date" in body["fields"]
    assert "future" in body["fields"]["order_date"][0]
    assert not SalesOrder.objects.exists()


def test_webhook_accepts_today_and_the_days_within_the_tolerance(
    enterprise: Any, agent: Any, settings: Any
) -> None:
    for days in range(-1, settings.ORDER_DATE_MAX_FUTURE_DAYS + 1):
        order = order_payload(agent.code, external_id=f"SO-{days}", order_date=days_ahead(days))
        response = post_signed(APIClient(), enterprise, event(order, f"evt-{days}"))
        assert response.status_code == 200, (days, response.content)


def test_no_tolerance_refuses_tomorrow(enterprise: Any, agent: Any, settings: Any) -> None:
    settings.ORDER_DATE_MAX_FUTURE_DAYS = 0
    order = order_payload(agent.code, external_id="SO-TMR", order_date=days_ahead(1))
    response = post_signed(APIClient(), enterprise, event(order, "evt-tmr"))
    assert response.status_code == 422 and "order_date" in response.json()["fields"]


def test_bulk_refuses_the_batch_naming_the_future_dated_row(enterprise: Any, agent: Any) -> None:
    orders = [order_payload(agent.code, external_id=f"SO-{i}") for i in range(3)]
    orders[1]["order_date"] = "9999-12-31"
    response = post_bulk(APIClient(), enterprise.plain_api_key, {"orders": orders})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_orders"
    assert [(e["row"], list(e["fields"])) for e in body["errors"]] == [(1, ["order_date"])]
    assert not SalesOrder.objects.exists()


def test_csv_refuses_a_future_dated_order(enterprise_admin: Any, agent: Any) -> None:
    rows = [line("SO-1", agent.code, "S", "1", "1.00", order_date="9999-12-31")]
    response = upload(client_for(enterprise_admin), csv_bytes(rows))
    assert response.status_code == 422
    assert "order_date" in response.json()["errors"][0]["fields"]
    assert not SalesOrder.objects.exists()


def test_a_partial_batch_rejects_only_the_future_dated_row(enterprise: Any, agent: Any) -> None:
    """The pull feed's mode: the other rows are applied."""
    orders = [order_payload(agent.code, external_id=f"SO-{i}") for i in range(2)]
    orders[0]["order_date"] = "9999-12-31"
    result = orders_ingest(
        enterprise=enterprise, payloads=orders, channel=FeedChannel.PULL, atomic=False
    )
    assert (result.created, result.rejected) == (1, 1)
    assert list(result.errors[0].fields) == ["order_date"]
    assert list(SalesOrder.objects.values_list("external_id", flat=True)) == ["SO-1"]
