"""Work per request on the order feed: orders and lines are capped on every channel.

The caps count work, not bytes: ``ORDER_BULK_MAX_ROWS`` orders and ``ORDER_BULK_MAX_LINES``
order lines (CSV rows) per bulk request, CSV upload or pulled page. A CSV upload is read row by
row and refused as soon as it passes a cap, so a worker never holds more than the caps allow.
"""

from __future__ import annotations

import io
import time
import tracemalloc
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from rest_framework.test import APIClient

from orders.models import FeedEvent, SalesOrder, SalesOrderLine
from tests.conftest import client_for
from tests.orders.factories import order_payload

from .feed_helpers import post_bulk
from .test_csv import COLUMNS, CSV_URL, csv_bytes, line, upload

pytestmark = pytest.mark.django_db


def order_with_lines(agent_code: str, external_id: str, lines: int) -> dict[str, Any]:
    order = order_payload(agent_code, external_id=external_id, amount=f"{lines}.00")
    order["lines"] = [{"sku": f"S{n}", "quantity": 1, "unit_price": "1.00"} for n in range(lines)]
    return order


def assert_refused(response: Any, status: int, code: str, field: str) -> None:
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert body["code"] == code, body
    assert field in body["fields"], body
    assert not SalesOrder.objects.exists() and not SalesOrderLine.objects.exists()


# --- bulk ---------------------------------------------------------------------------------------


def test_bulk_with_more_lines_than_the_cap_is_422_and_writes_nothing(
    enterprise: Any, agent: Any, settings: Any
) -> None:
    settings.ORDER_BULK_MAX_LINES = 50
    orders = [order_with_lines(agent.code, f"L-{i}", 10) for i in range(5)]
    ok = post_bulk(APIClient(), enterprise.plain_api_key, {"orders": orders})
    assert ok.status_code == 200, ok.content
    SalesOrder.objects.all().delete()

    orders.append(order_with_lines(agent.code, "L-5", 1))
    response = post_bulk(APIClient(), enterprise.plain_api_key, {"orders": orders})
    assert_refused(response, 422, "too_many_lines", "orders")


def test_bulk_at_the_default_caps_fits_the_default_byte_cap(
    enterprise: Any, agent: Any, settings: Any
) -> None:
    """The largest batch the default caps allow (10,000 orders, 100,000 lines) goes through the
    bulk endpoint's byte cap; one line more is refused before anything is parsed into orders."""
    rows, lines = settings.ORDER_BULK_MAX_ROWS, settings.ORDER_BULK_MAX_LINES
    per_order = lines // rows
    orders = [order_with_lines(agent.code, f"CAP-{i:05d}", per_order) for i in range(rows)]
    started = time.monotonic()
    response = post_bulk(APIClient(), enterprise.plain_api_key, {"orders": orders})
    assert response.status_code == 200, response.content[:300]
    assert response.json()["created"] == rows
    assert SalesOrderLine.objects.count() == rows * per_order
    assert time.monotonic() - started < 30  # gunicorn's default timeout, on a busy machine
    orders[0] = order_with_lines(agent.code, "CAP-00000", per_order + 1)
    response = post_bulk(APIClient(), enterprise.plain_api_key, {"orders": orders})
    assert response.status_code == 422 and response.json()["code"] == "too_many_lines"


# --- CSV ------------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(enterprise_admin: Any) -> Any:
    return client_for(enterprise_admin)


def test_csv_with_more_rows_than_the_line_cap_is_422_and_writes_nothing(
    admin_client: Any, agent: Any, settings: Any
) -> None:
    settings.ORDER_BULK_MAX_LINES = 20
    rows = [line(f"SO-{i // 4}", agent.code, f"S{i}", "1", "1.00") for i in range(20)]
    assert upload(admin_client, csv_bytes(rows)).status_code == 200
    SalesOrder.objects.all().delete()

    rows.append(line("SO-5", agent.code, "S20", "1", "1.00"))
    assert_refused(upload(admin_client, csv_bytes(rows)), 422, "too_many_lines", "file")
    assert FeedEvent.objects.filter(outcome="rejected").count() == 0


def test_csv_with_more_orders_than_the_bulk_cap_is_422(
    admin_client: Any, agent: Any, settings: Any
) -> None:
    """The bulk endpoint's order cap holds for CSV too (it was ignored: 300,000 rows went in)."""
    settings.ORDER_BULK_MAX_ROWS = 3
    rows = [line(f"SO-{i}", agent.code, "S", "1", "1.00") for i in range(4)]
    assert_refused(upload(admin_client, csv_bytes(rows)), 422, "too_many_orders", "file")


def test_a_large_csv_is_read_row_by_row_and_refused_at_the_cap_in_bounded_memory(
    enterprise_admin: Any, agent: Any, settings: Any
) -> None:
    """100,000 rows (about 6 MB) against a cap of 1,000 lines: refused after reading 1,001 rows.
    Memory is measured around the request only (the body is built before, modules imported)."""
    settings.ORDER_BULK_MAX_LINES = 1000
    text = io.StringIO()
    text.write(",".join(COLUMNS) + "\r\n")
    for i in range(100_000):
        text.write(f"SO-{i // 10},{agent.code},,CNY,confirmed,2026-11-20,1,S{i},1,1.00\r\n")
    data = text.getvalue().encode()
    assert len(data) > 5_000_000
    body = encode_multipart(BOUNDARY, {"file": SimpleUploadedFile("big.csv", data, "text/csv")})
    client = client_for(enterprise_admin)
    warm_up = upload(client, csv_bytes([line("SO-W", agent.code, "S", "1", "1.00")] * 1001))
    assert warm_up.status_code == 422  # every module the request needs is imported now
    tracemalloc.start()
    try:
        response = client.generic("POST", CSV_URL, body, content_type=MULTIPART_CONTENT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_refused(response, 422, "too_many_lines", "file")
    # The test client holds a copy of the body; the request itself needs little beside it (the
    # whole file as text, or its rows as dicts, would be several times the body).
    assert peak - len(body) < 2_000_000, (peak, len(body))
