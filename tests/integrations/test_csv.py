"""CSV order upload: one row per order line, by enterprise admins (own enterprise) and ops admins."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from orders.models import FeedEvent, SalesOrder, SalesOrderLine
from tests.conftest import client_for
from tests.orders.factories import AgentFactory, EnterpriseFactory, UserFactory

pytestmark = pytest.mark.django_db

CSV_URL = "/api/v1/integrations/orders/csv/"
COLUMNS = [
    "external_id",
    "agent_code",
    "order_amount",
    "currency",
    "status",
    "order_date",
    "version",
    "sku",
    "quantity",
    "unit_price",
]


def line(external_id: str, agent_code: str, sku: str, quantity: str, unit_price: str, **kw: str):
    row = {
        "external_id": external_id,
        "agent_code": agent_code,
        "order_amount": "",
        "currency": "CNY",
        "status": "confirmed",
        "order_date": "2026-11-20",
        "version": "1",
        "sku": sku,
        "quantity": quantity,
        "unit_price": unit_price,
    }
    row.update(kw)
    return row


def csv_bytes(
    rows: list[dict[str, str]], columns: list[str] = COLUMNS, encoding: str = "utf-8"
) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def upload(client: Any, data: bytes, enterprise: str | None = None) -> Any:
    body: dict[str, Any] = {"file": SimpleUploadedFile("orders.csv", data, "text/csv")}
    if enterprise is not None:
        body["enterprise"] = enterprise
    return client.post(CSV_URL, body, format="multipart")


@pytest.fixture
def admin_client(enterprise_admin: Any) -> Any:
    return client_for(enterprise_admin)


@pytest.fixture
def ops_client(ops_user: Any) -> Any:
    return client_for(ops_user)


def two_orders(agent_code: str) -> list[dict[str, str]]:
    """SO-1: three lines with the order amount stated; SO-2: one line, amount left to the sum."""
    return [
        line("SO-1", agent_code, "BOLT", "10", "2.50", order_amount="1225.00"),
        line("SO-1", agent_code, "NUT", "100", "0.20", order_amount="1225.00"),
        line("SO-1", agent_code, "PUMP", "2", "590.00", order_amount="1225.00"),
        line("SO-2", agent_code, "VALVE", "3", "150.00", status="shipped", version="4"),
    ]


def test_enterprise_admin_uploads_orders_with_several_lines_each(admin_client, enterprise, agent):
    response = upload(admin_client, csv_bytes(two_orders(agent.code)))

    assert response.status_code == 200, response.content
    assert response.json() == {"created": 2, "updated": 0, "stale": 0, "rejected": 0, "errors": []}
    first = SalesOrder.objects.get(enterprise=enterprise, external_id="SO-1")
    assert (first.agent_id, first.amount, first.currency) == (agent.pk, Decimal("1225.00"), "CNY")
    assert (first.status, first.version, first.order_date.isoformat()) == (
        "confirmed",
        1,
        "2026-11-20",
    )
    assert list(first.lines.values_list("line_no", "sku", "quantity", "unit_price", "amount")) == [
        (1, "BOLT", Decimal("10"), Decimal("2.50"), Decimal("25.00")),
        (2, "NUT", Decimal("100"), Decimal("0.20"), Decimal("20.00")),
        (3, "PUMP", Decimal("2"), Decimal("590.00"), Decimal("1180.00")),
    ]
    second = SalesOrder.objects.get(enterprise=enterprise, external_id="SO-2")
    assert (second.amount, second.status, second.version) == (Decimal("450.00"), "shipped", 4)
    assert second.lines.count() == 1
    log = FeedEvent.objects.get(enterprise=enterprise)
    assert (log.channel, log.outcome, log.row_count) == ("csv", "applied", 2)

    # The admin sees them, lines included, through the orders API.
    listed = admin_client.get("/api/v1/orders/").json()
    assert sorted(o["external_id"] for o in listed["results"]) == ["SO-1", "SO-2"]
    detail = admin_client.get(f"/api/v1/orders/{first.pk}/").json()
    assert [(x["sku"], x["amount"]) for x in detail["lines"]] == [
        ("BOLT", "25.00"),
        ("NUT", "20.00"),
        ("PUMP", "1180.00"),
    ]


def test_excel_style_file_with_bom_and_without_order_amount_column(admin_client, enterprise, agent):
    columns = [c for c in COLUMNS if c != "order_amount"]
    rows = [line("SO-9", agent.code, "A", "3", "33.33"), line("SO-9", agent.code, "B", "1", "0.01")]

    response = upload(admin_client, csv_bytes(rows, columns, encoding="utf-8-sig"))

    assert response.status_code == 200, response.content
    assert SalesOrder.objects.get(external_id="SO-9").amount == Decimal("100.00")


def test_reupload_applies_newer_versions_and_ignores_older(admin_client, enterprise, agent):
    upload(admin_client, csv_bytes(two_orders(agent.code)))
    rows = [
        line("SO-1", agent.code, "PUMP", "1", "590.00", version="2"),  # newer: replaces lines
        line("SO-2", agent.code, "VALVE", "9", "1.00", version="3"),  # older than 4: stale
    ]

    response = upload(admin_client, csv_bytes(rows))

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["created"], body["updated"], body["stale"]) == (0, 1, 1)
    first = SalesOrder.objects.get(external_id="SO-1")
    assert (first.version, first.amount) == (2, Decimal("590.00"))
    assert list(first.lines.values_list("sku", flat=True)) == ["PUMP"]
    assert SalesOrder.objects.get(external_id="SO-2").amount == Decimal("450.00")


# --- who may upload, for whom ---------------------------------------------------------------


def test_ops_admin_must_name_the_enterprise(ops_client, enterprise, agent):
    data = csv_bytes(two_orders(agent.code))

    for named in (None, "", "CE-NOSUCH"):
        response = upload(ops_client, data, enterprise=named)
        assert response.status_code == 422, named
        assert "enterprise" in response.json()["fields"]
    assert not SalesOrder.objects.exists()

    response = upload(ops_client, data, enterprise=enterprise.code)
    assert response.status_code == 200, response.content
    assert set(SalesOrder.objects.values_list("enterprise_id", flat=True)) == {enterprise.pk}
    assert SalesOrder.objects.count() == 2


def test_enterprise_admin_naming_another_enterprise_gets_403(admin_client, enterprise, agent):
    other = EnterpriseFactory()
    AgentFactory(enterprises=[other], code="AG-OTHER")

    response = upload(admin_client, csv_bytes(two_orders("AG-OTHER")), enterprise=other.code)

    assert response.status_code == 403
    assert response.json()["code"] == "enterprise_mismatch"
    assert not SalesOrder.objects.exists()
    # Naming its own enterprise is fine.
    own = upload(admin_client, csv_bytes(two_orders(agent.code)), enterprise=enterprise.code)
    assert own.status_code == 200, own.content


def test_enterprise_admin_cannot_file_orders_for_another_enterprises_agent(
    admin_client, enterprise
):
    other = EnterpriseFactory()
    AgentFactory(enterprises=[other], code="AG-THEIRS")

    response = upload(admin_client, csv_bytes(two_orders("AG-THEIRS")))

    assert response.status_code == 422
    assert not SalesOrder.objects.exists()


@pytest.mark.parametrize("role", ["agent", "risk_reviewer", "risk_approver"])
def test_users_other_than_admins_get_403(role, enterprise, agent):
    user = UserFactory(role=role, agent=agent if role == "agent" else None)

    response = upload(client_for(user), csv_bytes(two_orders(agent.code)))

    assert response.status_code == 403
    assert not SalesOrder.objects.exists()


def test_anonymous_upload_is_refused(enterprise, agent):
    response = upload(APIClient(), csv_bytes(two_orders(agent.code)), enterprise=enterprise.code)

    assert response.status_code in (401, 403)
    assert not SalesOrder.objects.exists()


# --- bad files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("on_line", "change", "field"),
    [
        (0, {"agent_code": "AG-NOBODY"}, "agent_code"),
        (1, {"unit_price": "12.345"}, "lines[1].unit_price"),
        (1, {"unit_price": "twelve"}, "lines[1].unit_price"),
        (1, {"quantity": "-1"}, "lines[1].quantity"),
        (0, {"order_date": "20/11/2026"}, "order_date"),
        (0, {"status": "paid"}, "status"),
        (0, {"currency": "RMB"}, "currency"),
        (0, {"version": "v2"}, "version"),
    ],
    ids=lambda v: next(iter(v.values())) if isinstance(v, dict) else None,
)
def test_one_bad_row_rejects_the_file_naming_the_row_and_writes_nothing(
    admin_client, enterprise, agent, on_line, change, field
):
    # Order fields are read from an order's first line, line fields from their own line.
    bad_order = [
        line("SO-3", agent.code, "OK", "1", "10.00"),
        line("SO-3", agent.code, "BAD", "1", "10.00"),
    ]
    bad_order[on_line].update(change)
    rows = [*two_orders(agent.code), *bad_order]

    response = upload(admin_client, csv_bytes(rows))

    assert response.status_code == 422, response.content
    body = response.json()
    assert body["code"] == "invalid_orders"
    assert len(body["errors"]) == 1
    error = body["errors"][0]
    assert (error["row"], error["external_id"]) == (2, "SO-3")
    assert field in error["fields"], error
    assert "(rows 2)" in body["detail"]
    assert not SalesOrder.objects.exists()
    assert not SalesOrderLine.objects.exists()
    log = FeedEvent.objects.get(enterprise=enterprise)
    assert (log.channel, log.outcome) == ("csv", "rejected")


def test_order_amount_must_equal_the_sum_of_lines(admin_client, enterprise, agent):
    rows = two_orders(agent.code)
    for row in rows[:3]:
        row["order_amount"] = "1225.01"

    response = upload(admin_client, csv_bytes(rows))

    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert (error["row"], error["external_id"]) == (0, "SO-1")
    assert "does not equal the sum of its lines (1225.00)" in error["fields"]["amount"][0]
    assert not SalesOrder.objects.exists()


def test_missing_columns_are_named(admin_client, enterprise, agent):
    columns = [c for c in COLUMNS if c not in ("agent_code", "unit_price")]

    response = upload(admin_client, csv_bytes(two_orders(agent.code), columns))

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_csv"
    assert "agent_code" in body["fields"]["file"][0] and "unit_price" in body["fields"]["file"][0]
    assert not SalesOrder.objects.exists()


def test_file_that_is_not_utf8_is_refused(admin_client, enterprise, agent):
    rows = [line("SO-1", agent.code, "螺栓", "1", "10.00")]

    response = upload(admin_client, csv_bytes(rows, encoding="gbk"))

    assert response.status_code == 422
    assert response.json()["fields"]["file"] == ["Not UTF-8."]
    assert not SalesOrder.objects.exists()


def test_header_only_file_is_refused(admin_client, enterprise):
    response = upload(admin_client, csv_bytes([]))

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_csv"


def test_upload_without_a_file_is_refused(admin_client, enterprise):
    response = admin_client.post(CSV_URL, {"enterprise": enterprise.code}, format="multipart")

    assert response.status_code == 422
    assert "file" in response.json()["fields"]


@pytest.mark.parametrize("version", ["²", "٣", "1" * 40])
def test_version_that_is_not_a_plain_number_is_a_422_not_a_500(
    admin_client, enterprise, agent, version
):
    # "²" and "٣" pass str.isdigit(); a 40-digit number does not fit the version column.
    rows = [line("SO-1", agent.code, "A", "1", "10.00", version=version)]

    response = upload(admin_client, csv_bytes(rows))

    assert response.status_code == 422, response.content
    assert "version" in response.json()["errors"][0]["fields"]
    assert not SalesOrder.objects.exists()


@pytest.mark.parametrize(
    ("quantity", "unit_price"), [("1e999999", "10.00"), ("twelve", "1.00"), ("sNaN", "1.00")]
)
def test_unusable_numbers_without_order_amount_are_a_422_not_a_500(
    admin_client, enterprise, agent, quantity, unit_price
):
    rows = [line("SO-1", agent.code, "A", quantity, unit_price)]

    response = upload(admin_client, csv_bytes(rows))

    assert response.status_code == 422, response.content
    assert "lines[0].quantity" in response.json()["errors"][0]["fields"]
    assert not SalesOrder.objects.exists()


def test_fractional_quantity_with_order_amount_stated(admin_client, enterprise, agent):
    rows = [line("SO-1", agent.code, "STEEL", "1.5", "300.00", order_amount="450.00")]

    response = upload(admin_client, csv_bytes(rows))

    assert response.status_code == 200, response.content
    assert SalesOrder.objects.get().lines.get().quantity == Decimal("1.5")


def test_fractional_quantity_without_order_amount_is_summed_to_cents(
    admin_client, enterprise, agent
):
    rows = [line("SO-1", agent.code, "STEEL", "1.5", "300.00")]

    response = upload(admin_client, csv_bytes(rows))

    assert response.status_code == 200, response.content
    assert SalesOrder.objects.get().amount == Decimal("450.00")


def test_an_optional_shipped_quantity_column_is_kept_per_line(admin_client, enterprise, agent):
    rows = [
        line("SO-1", agent.code, "BOLT", "10", "2.50", shipped_quantity="4"),
        line("SO-1", agent.code, "NUT", "100", "0.20", shipped_quantity=""),
    ]
    response = upload(admin_client, csv_bytes(rows, [*COLUMNS, "shipped_quantity"]))
    assert response.status_code == 200, response.content
    order = SalesOrder.objects.get(enterprise=enterprise, external_id="SO-1")
    assert list(order.lines.values_list("sku", "shipped_quantity")) == [
        ("BOLT", Decimal("4")),
        ("NUT", None),
    ]
    too_many = [line("SO-2", agent.code, "BOLT", "10", "2.50", shipped_quantity="11")]
    response = upload(admin_client, csv_bytes(too_many, [*COLUMNS, "shipped_quantity"]))
    assert response.status_code == 422
    assert "More shipped than the line's quantity." in str(response.json())
    assert not SalesOrder.objects.filter(external_id="SO-2").exists()
