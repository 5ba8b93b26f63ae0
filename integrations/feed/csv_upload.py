"""CSV order upload: one row per order line, order fields repeated on each of its lines.

Columns: ``external_id, agent_code, order_amount (optional), currency, status, order_date,
version, sku, quantity, unit_price, shipped_quantity (optional)``. Rows are grouped into orders here and then validated by the
same ``order_parse`` as every other channel.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from decimal import Decimal, DecimalException
from typing import IO, Any

from orders.services.parse import batch_size_check
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


def _checked(text: Iterable[str]) -> Iterator[str]:
    """The file's lines, refusing NUL: PostgreSQL cannot store it, and csv would pass it on."""
    for piece in text:
        if "\x00" in piece:
            raise ValidationFailed(
                "The file contains NUL characters.",
                code="invalid_csv",
                fields={"file": ["NUL (0x00) characters are not allowed."]},
            )
        yield piece


def _order(row: dict[str, Any], external_id: str) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "agent_code": (row["agent_code"] or "").strip(),
        "currency": (row["currency"] or "").strip(),
        "status": (row["status"] or "").strip(),
        "order_date": (row["order_date"] or "").strip(),
        "version": _version(row["version"] or ""),
        "lines": [],
    }


def _read_orders(reader: csv.DictReader[str]) -> dict[str, dict[str, Any]]:
    """Group the rows into orders, stopping at the first row past the caps on orders or lines."""
    orders: dict[str, dict[str, Any]] = {}
    for rows, row in enumerate(reader, start=1):
        external_id = (row["external_id"] or "").strip()
        order = orders.get(external_id)
        if order is None:
            order = orders[external_id] = _order(row, external_id)
        batch_size_check(orders=len(orders), lines=rows, field="file")
        amount = (row.get("order_amount") or "").strip()
        if amount:
            order["amount"] = amount
        line = {
            "sku": (row["sku"] or "").strip(),
            "quantity": (row["quantity"] or "").strip(),
            "unit_price": (row["unit_price"] or "").strip(),
        }
        shipped = (row.get("shipped_quantity") or "").strip()
        if shipped:
            line["shipped_quantity"] = shipped
        order["lines"].append(line)
    return orders


def csv_orders(upload: IO[bytes]) -> list[dict[str, Any]]:
    """Read an uploaded CSV into order payloads, row by row; ``ValidationFailed`` (422) if it is
    not a usable CSV or passes the caps on orders or lines (``batch_size_check``).

    The file is streamed (Django keeps a large upload in a temporary file): a worker holds the
    rows of at most one capped batch, however large the file.
    """
    text = io.TextIOWrapper(upload, encoding="utf-8-sig", newline="")
    try:
        reader = csv.DictReader(_checked(text))
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise ValidationFailed(
                "The CSV is missing columns.",
                code="invalid_csv",
                fields={"file": [f"Missing columns: {', '.join(missing)}."]},
            )
        orders = _read_orders(reader)
    except UnicodeDecodeError:
        raise ValidationFailed(
            "The file must be UTF-8 text.", fields={"file": ["Not UTF-8."]}
        ) from None
    except csv.Error as exc:
        raise ValidationFailed(
            f"Unreadable CSV: {exc}", code="invalid_csv", fields={"file": [str(exc)]}
        ) from None
    finally:
        text.detach()  # the upload is Django's to close
    if not orders:
        raise ValidationFailed(
            "The CSV has no rows.", code="invalid_csv", fields={"file": ["No rows."]}
        )
    for order in orders.values():
        if "amount" not in order:
            order["amount"] = _lines_total(order["lines"])
    return list(orders.values())
