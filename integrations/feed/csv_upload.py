"""CSV order upload: one row per order line, order fields repeated on each of its lines.

Columns: ``external_id, agent_code, order_amount (optional), currency, status, order_date,
version, sku, quantity, unit_price``. Rows are grouped into orders here and then validated by the
same ``order_parse`` as every other channel.
"""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal, DecimalException
from typing import Any

from scf.errors import ValidationFailed

REQUIRED = (
    "external_id",
    "agent_code",
    "currency",
    "status",
    "order_date",
    "version",
    "sku",
    "quantity",
    "unit_price",
)
MAX_BYTES = 20 * 1024 * 1024


def _version(text: str) -> int | str:
    """An ASCII whole number becomes an int; anything else is passed on for validation to reject."""
    return int(text) if re.fullmatch(r"[0-9]{1,10}", text.strip()) else text


def _lines_total(lines: list[dict[str, str]]) -> str:
    """The order amount implied by its lines, as a decimal string ("" if it cannot be computed:
    validation then reports the bad line fields)."""
    try:
        total = sum(
            (Decimal(line["quantity"]) * Decimal(line["unit_price"]) for line in lines), Decimal(0)
        )
        cents = total.quantize(Decimal("0.01"))
    except DecimalException:
        return ""
    return str(cents) if cents == total else str(total)


def csv_orders(data: bytes) -> list[dict[str, Any]]:
    """Parse an uploaded CSV into order payloads; ``ValidationFailed`` if it is not a usable CSV."""
    if len(data) > MAX_BYTES:
        raise ValidationFailed("The file is too large.", fields={"file": ["At most 20 MB."]})
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed(
            "The file must be UTF-8 text.", fields={"file": ["Not UTF-8."]}
        ) from None
    if "\x00" in text:  # PostgreSQL cannot store it; csv would pass it on
        raise ValidationFailed(
            "The file contains NUL characters.",
            code="invalid_csv",
            fields={"file": ["NUL (0x00) characters are not allowed."]},
        )
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise ValidationFailed(
            "The CSV is missing columns.",
            code="invalid_csv",
            fields={"file": [f"Missing columns: {', '.join(missing)}."]},
        )
    orders: dict[str, dict[str, Any]] = {}
    try:
        for row in reader:
            external_id = (row["external_id"] or "").strip()
            order = orders.get(external_id)
            if order is None:
                order = {
                    "external_id": external_id,
                    "agent_code": (row["agent_code"] or "").strip(),
                    "currency": (row["currency"] or "").strip(),
                    "status": (row["status"] or "").strip(),
                    "order_date": (row["order_date"] or "").strip(),
                    "version": _version(row["version"] or ""),
                    "lines": [],
                }
                orders[external_id] = order
            amount = (row.get("order_amount") or "").strip()
            if amount:
                order["amount"] = amount
            order["lines"].append(
                {
                    "sku": (row["sku"] or "").strip(),
                    "quantity": (row["quantity"] or "").strip(),
                    "unit_price": (row["unit_price"] or "").strip(),
                }
            )
    except csv.Error as exc:
        raise ValidationFailed(
            f"Unreadable CSV: {exc}", code="invalid_csv", fields={"file": [str(exc)]}
        ) from None
    if not orders:
        raise ValidationFailed(
            "The CSV has no rows.", code="invalid_csv", fields={"file": ["No rows."]}
        )
    for order in orders.values():
        if "amount" not in order:
            order["amount"] = _lines_total(order["lines"])
    return list(orders.values())
