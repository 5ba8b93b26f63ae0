"""Scenario 13: bad money input is refused with a clear 400/422, and changes no row.

Every endpoint that takes an amount or a currency is sent each bad value: the repayments API
(ops admin, on an active loan), and the order feed through all three of its doors (signed
webhook, bulk with the integration key, CSV upload by the enterprise admin), in the order
amount and in a line's unit price. Bad values: zero and negative, above 10^15, NaN and
Infinity (as strings and as bare JSON constants), ``1e309`` (string and JSON number), three
decimal places, JSON floats (``100.5`` as a number), non-numbers, and wrong, unknown or
mismatched currencies.

Each reply must be 400 or 422 with the error shape, a machine code and a message naming the
field, and the money tables (orders and lines, loans, journal entries and lines, repayments,
accruals, disbursements) plus credit lines and programs must be exactly as before, row for row.
A control request with a good value proves each door does write when the input is right.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from lending.models import CreditLine, Program
from tests.conftest import client_for
from tests.integrations.feed_helpers import BULK, post_signed
from tests.security.world import MONEY_MODELS, World, money_counts, seed_world

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

# Raw JSON for the value of an amount field: strings, bare constants and numbers alike.
BAD_AMOUNTS = [
    '"0"',
    '"0.00"',
    '"-0.01"',
    '"-100.00"',
    "0",
    "-5",
    '"1000000000000000.01"',
    '"9999999999999999.99"',
    '"99999999999999999999"',
    "100000000000000000000",
    '"NaN"',
    '"nan"',
    '"sNaN"',
    '"Infinity"',
    '"-Infinity"',
    '"inf"',
    "NaN",
    "Infinity",
    "-Infinity",
    '"1e309"',
    "1e309",
    '"100.001"',
    '"0.001"',
    "100.5",
    "100.0",
    "1e2",
    '""',
    '" "',
    '"abc"',
    '"1,000.00"',
    '"100.00 CNY"',
    "null",
    "true",
    "[]",
    '{"amount": "100.00"}',
]
# A line's unit price may be zero (a free item); everything else above is bad there too.
BAD_PRICES = [raw for raw in BAD_AMOUNTS if raw not in ('"0"', '"0.00"', "0")]
BAD_CURRENCIES = ['"XYZ"', '"cny"', '"CN"', '"CNYY"', '""', "null", "156", '"元"', '"USD "']
UNPARSED = ("parse_error", "malformed_json")
CSV_BAD = ["0", "-1.00", "1000000000000000.01", "NaN", "Infinity", "1e309", "100.001", "abc", "-"]
CSV_BAD_CURRENCIES = ["XYZ", "cny", "", "RMB"]


def money_rows() -> dict[str, list[str]]:
    """Every row of the money tables, credit lines and programs (balances live there too)."""
    return {
        model.__name__: [repr(r) for r in model._base_manager.order_by("pk").values_list()]
        for model in (*MONEY_MODELS, CreditLine, Program)
    }


def assert_refused(response: Any, label: str) -> None:
    assert response.status_code in (400, 422), (label, response.status_code, response.content)
    body = response.json()
    assert body["code"] and body["detail"], (label, body)
    # It names the field at fault: in "fields", or per row for a batch ("errors"). A body that is
    # not JSON at all (a bare NaN or Infinity) has no field to name: its code says so.
    row_fields = [row["fields"] for row in body.get("errors", [])]
    assert body["fields"] or (all(row_fields) and row_fields) or body["code"] in UNPARSED, (
        label,
        body,
    )


def check_all_refused(world: World, send: Any, values: list[str], label: str) -> int:
    """Send each value; all refused, and no money row changed. Returns how many were sent."""
    counts, rows = money_counts(), money_rows()
    for i, raw in enumerate(values):
        assert_refused(send(raw, i), f"{label} = {raw}")
    assert money_counts() == counts
    assert money_rows() == rows
    return len(values)


# --- the repayments API ------------------------------------------------------------------------


def _repayment(world: World) -> Any:
    client = client_for(world.ops)
    loan = world.a.loans["active"]
    today = dt.date.today().isoformat()

    def send(amount: str, i: int, currency: str | None = None) -> Any:
        body = f'{{"amount": {amount}, "value_date": "{today}", "reference": "BAD-{i}"'
        body += f', "currency": {currency}}}' if currency is not None else "}"
        return client.post(
            f"/api/v1/loans/{loan.pk}/repayments/", data=body, content_type="application/json"
        )

    return send


def test_repayment_refuses_bad_amounts():
    world = seed_world()
    send = _repayment(world)
    check_all_refused(world, send, BAD_AMOUNTS, "repayment amount")
    assert send('"100.00"', 999).status_code == 201  # the control: a good amount is recorded


def test_repayment_refuses_bad_and_mismatched_currencies():
    world = seed_world()
    send = _repayment(world)
    # USD is a real currency, but not the loan's (CNY).
    values = [*BAD_CURRENCIES, '"USD"']
    check_all_refused(world, lambda raw, i: send('"100.00"', i, raw), values, "currency")
    response = send('"100.00"', 1, '"USD"')
    assert response.status_code == 422
    assert response.json()["code"] == "currency_mismatch"
    assert send('"100.00"', 998, '"CNY"').status_code == 201


def test_repayment_form_input_is_held_to_the_same_rules():
    world = seed_world()
    client = client_for(world.ops)
    loan = world.a.loans["active"]
    counts = money_counts()
    for amount in ("0", "-1", "NaN", "Infinity", "1e309", "100.001", "1000000000000000.01"):
        response = client.post(
            f"/api/v1/loans/{loan.pk}/repayments/",
            {"amount": amount, "value_date": dt.date.today().isoformat(), "reference": "F-1"},
        )
        assert_refused(response, f"form amount {amount}")
    assert money_counts() == counts


# --- the order feed: bulk, webhook, CSV --------------------------------------------------------


def _order_json(world: World, external_id: str, *, amount: str, price: str, currency: str) -> str:
    """One order as raw JSON, its amount, unit price and currency spliced in unparsed."""
    today = dt.date.today().isoformat()
    return (
        f'{{"external_id": "{external_id}", "agent_code": "{world.a.agent.code}", '
        f'"amount": {amount}, "currency": {currency}, "status": "confirmed", '
        f'"order_date": "{today}", "version": 1, '
        f'"lines": [{{"sku": "X1", "quantity": 1, "unit_price": {price}}}]}}'
    )


def _bad_orders(world: World, field: str, raw: str, i: int) -> str:
    good = {"amount": '"100.00"', "price": '"100.00"', "currency": '"CNY"'}
    if field == "amount":
        # The line carries the same bad value, so the order is not refused only for a sum.
        good["amount"] = good["price"] = raw
    else:
        good[field] = raw
    return _order_json(world, f"BAD-{field}-{i}", **good)


def test_line_amounts_past_decimal_precision_are_refused_not_500():
    """Found by the fuzzer: quantity x unit price past 28 digits made quantize() raise."""
    world = seed_world()
    counts = money_counts()
    today = dt.date.today().isoformat()
    for quantity, price in (
        ("9999999999999999", '"9999999999999999.99"'),
        ("99999999999", '"1e15"'),
    ):
        order = (
            f'{{"external_id": "HUGE-{quantity}", "agent_code": "{world.a.agent.code}", '
            f'"amount": "100.00", "currency": "CNY", "status": "confirmed", '
            f'"order_date": "{today}", "version": 1, '
            f'"lines": [{{"sku": "X1", "quantity": {quantity}, "unit_price": {price}}}]}}'
        )
        response = APIClient().post(
            BULK,
            data=f'{{"orders": [{order}]}}'.encode(),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Api-Key {world.a.enterprise.plain_api_key}",
        )
        assert_refused(response, f"line {quantity} x {price}")
    assert money_counts() == counts


def _bulk(world: World, field: str) -> Any:
    client = APIClient()

    def send(raw: str, i: int) -> Any:
        body = f'{{"orders": [{_bad_orders(world, field, raw, i)}]}}'
        return client.post(
            BULK,
            data=body.encode(),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Api-Key {world.a.enterprise.plain_api_key}",
        )

    return send


def _webhook(world: World, field: str) -> Any:
    client = APIClient()

    def send(raw: str, i: int) -> Any:
        order = _bad_orders(world, field, raw, i)
        body = f'{{"event_id": "evt-bad-{field}-{i}", "type": "order.upserted", "order": {order}}}'
        return post_signed(client, world.a.enterprise, body.encode())

    return send


@pytest.mark.parametrize("door", ["bulk", "webhook"])
def test_order_feed_refuses_bad_amounts_prices_and_currencies(door):
    world = seed_world()
    make = _bulk if door == "bulk" else _webhook
    sent = check_all_refused(world, make(world, "amount"), BAD_AMOUNTS, f"{door} amount")
    sent += check_all_refused(world, make(world, "price"), BAD_PRICES, f"{door} unit_price")
    sent += check_all_refused(world, make(world, "currency"), BAD_CURRENCIES, f"{door} currency")
    assert sent == len(BAD_AMOUNTS) + len(BAD_PRICES) + len(BAD_CURRENCIES)
    # The control: the same door takes a good order.
    orders = money_counts()["SalesOrder"]
    response = make(world, "amount")('"100.00"', 999)
    assert response.status_code == 200, response.content
    assert money_counts()["SalesOrder"] == orders + 1


CSV_HEADER = (
    "external_id,agent_code,order_amount,currency,status,order_date,version,sku,quantity,unit_price"
)


def _csv(
    world: World, n: int, *, amount: str = "", price: str = "100.00", currency: str = "CNY"
) -> bytes:
    row = [
        f"CSV-{n}",
        world.a.agent.code,
        amount,
        currency,
        "confirmed",
        dt.date.today().isoformat(),
        "1",
        "X1",
        "1",
        price,
    ]
    return (CSV_HEADER + "\n" + ",".join(row) + "\n").encode()


def test_csv_upload_refuses_bad_amounts_prices_and_currencies():
    world = seed_world()
    client = client_for(world.a.admin)

    def upload(data: bytes) -> Any:
        return client.post(
            "/api/v1/integrations/orders/csv/",
            {"file": SimpleUploadedFile("orders.csv", data, content_type="text/csv")},
            format="multipart",
        )

    cases = [_csv(world, 1, amount=v, price=v) for v in CSV_BAD]
    cases += [_csv(world, 2, price=v) for v in CSV_BAD if v != "0"]
    cases += [_csv(world, 3, currency=c) for c in CSV_BAD_CURRENCIES]
    check_all_refused(world, lambda raw, i: upload(cases[i]), [""] * len(cases), "csv")
    orders = money_counts()["SalesOrder"]
    assert upload(_csv(world, 4, amount="100.00")).status_code == 200
    assert money_counts()["SalesOrder"] == orders + 1


def test_bad_json_bodies_are_400_not_500():
    world = seed_world()
    bulk = APIClient()
    counts = money_counts()
    for body in (b'{"orders": [', b"\xff\xfe", b'{"orders": [{"amount": 1e999999}]}', b"NaN"):
        response = bulk.post(
            BULK,
            data=body,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Api-Key {world.a.enterprise.plain_api_key}",
        )
        assert response.status_code in (400, 422), (body, response.content)
        assert response.json()["code"]
    assert money_counts() == counts
