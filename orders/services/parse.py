"""Validation of incoming orders, shared by every feed channel (webhook, bulk, CSV, pull): one
order's fields, and the size of a batch (``batch_size_check``).

Hand-written rather than a serializer per row: a 10,000-order bulk request validates in tens of
milliseconds. Every problem is collected as a field error; nothing here touches the database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings

from scf import clock
from scf.errors import ValidationFailed
from scf.money import CENT, MAX_AMOUNT, is_iso_currency, parse_amount

from ..models import OrderStatus

MAX_LINES = 1000
# No real order comes near it; a cap well inside NUMERIC(18, 2) keeps sums of orders in range.
MAX_ORDER_AMOUNT = Decimal(10) ** 15
MAX_ID_LENGTH = 64
_STATUSES = frozenset(OrderStatus.values)


@dataclass(frozen=True, slots=True)
class OrderLineInput:
    sku: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    shipped_quantity: Decimal | None = None  # optional: how much of the line has shipped


@dataclass(frozen=True, slots=True)
class OrderInput:
    external_id: str
    agent_code: str
    amount: Decimal
    currency: str
    status: str
    order_date: dt.date
    version: int
    lines: tuple[OrderLineInput, ...]
    raw: dict[str, Any]
    enterprise_code: str | None = None


class OrderInvalid(Exception):
    """The order cannot be accepted; ``fields`` maps field names to messages."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in fields.items()))
        self.fields = fields


class TooManyOrders(ValidationFailed):
    code = "too_many_orders"


class TooManyLines(ValidationFailed):
    code = "too_many_lines"


def batch_size_check(*, orders: int, lines: int, field: str = "orders") -> None:
    """Refuse a batch past ``settings.ORDER_BULK_MAX_ROWS`` orders or ``ORDER_BULK_MAX_LINES``
    order lines (422), on every channel; ``field`` names what the client sent them in.

    The caps count the work a request makes (each line is parsed, checked and written), so
    that the largest batch allowed is ingested well inside the server's timeout.
    """
    max_orders, max_lines = settings.ORDER_BULK_MAX_ROWS, settings.ORDER_BULK_MAX_LINES
    if orders > max_orders:
        raise TooManyOrders(
            f"At most {max_orders} orders per request.",
            fields={field: [f"At most {max_orders} orders per request."]},
        )
    if lines > max_lines:
        raise TooManyLines(
            f"At most {max_lines} order lines per request; split the batch.",
            fields={field: [f"At most {max_lines} order lines per request."]},
        )


def payload_lines(payload: object) -> int:
    """How many lines an order payload carries (0 if it is not an order with a list of lines)."""
    lines = payload.get("lines") if isinstance(payload, dict) else None
    return len(lines) if isinstance(lines, list) else 0


def _text(data: dict[str, Any], key: str, errors: dict[str, list[str]]) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        errors.setdefault(key, []).append("This field is required and must be a non-empty string.")
        return ""
    if len(value) > MAX_ID_LENGTH:
        errors.setdefault(key, []).append(f"At most {MAX_ID_LENGTH} characters.")
    return value.strip()


def _amount(value: object, key: str, errors: dict[str, list[str]], *, allow_zero: bool) -> Decimal:
    try:
        return parse_amount(value, allow_zero=allow_zero)
    except ValueError as exc:
        errors.setdefault(key, []).append(str(exc))
        return Decimal(0)


def _quantity(value: object, key: str, errors: dict[str, list[str]]) -> Decimal:
    if isinstance(value, bool | float):
        errors.setdefault(key, []).append("Send quantities as integers or decimal strings.")
        return Decimal(0)
    try:
        quantity = Decimal(value) if isinstance(value, int | str) else Decimal("NaN")
    except InvalidOperation:
        quantity = Decimal("NaN")
    if not quantity.is_finite() or quantity <= 0 or quantity > MAX_AMOUNT:
        errors.setdefault(key, []).append("Quantity must be a positive number.")
        return Decimal(0)
    exponent = quantity.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -4:
        errors.setdefault(key, []).append("Quantity must have at most four decimal places.")
    return quantity


def _shipped(
    item: dict[str, Any], ordered: Decimal, key: str, errors: dict[str, list[str]]
) -> Decimal | None:
    """The line's optional ``shipped_quantity``: 0 up to the quantity ordered."""
    value = item.get("shipped_quantity")
    if value is None:
        return None
    try:
        if isinstance(value, int | str) and not isinstance(value, bool) and Decimal(value) == 0:
            return Decimal(0)
    except InvalidOperation:
        pass  # _quantity says what is wrong with it
    shipped = _quantity(value, key, errors)
    if shipped > ordered:
        errors.setdefault(key, []).append("More shipped than the line's quantity.")
    return shipped


def _lines(raw_lines: object, errors: dict[str, list[str]]) -> tuple[OrderLineInput, ...]:
    if not isinstance(raw_lines, list) or not raw_lines:
        errors.setdefault("lines", []).append("At least one order line is required.")
        return ()
    if len(raw_lines) > MAX_LINES:
        errors.setdefault("lines", []).append(f"At most {MAX_LINES} lines per order.")
        return ()
    lines = []
    for i, item in enumerate(raw_lines):
        prefix = f"lines[{i}]"
        if not isinstance(item, dict):
            errors.setdefault(prefix, []).append("Each line must be an object.")
            continue
        sku = item.get("sku")
        if not isinstance(sku, str) or not sku.strip() or len(sku) > MAX_ID_LENGTH:
            errors.setdefault(f"{prefix}.sku", []).append("A non-empty SKU is required.")
            sku = ""
        quantity = _quantity(item.get("quantity"), f"{prefix}.quantity", errors)
        price = _amount(item.get("unit_price"), f"{prefix}.unit_price", errors, allow_zero=True)
        amount = quantity * price
        if amount > MAX_ORDER_AMOUNT:
            # Past 28 digits Decimal cannot even round it to the cent.
            errors.setdefault(f"{prefix}.quantity", []).append(
                "Quantity x unit price is too large."
            )
            amount = Decimal(0)
        elif amount != amount.quantize(CENT):
            errors.setdefault(f"{prefix}.quantity", []).append(
                "Quantity x unit price must come to whole cents."
            )
        shipped = _shipped(item, quantity, f"{prefix}.shipped_quantity", errors)
        lines.append(OrderLineInput(sku.strip(), quantity, price, amount.quantize(CENT), shipped))
    return tuple(lines)


def latest_order_date() -> dt.date:
    """The last order date the feed accepts: today (in ``settings.TIME_ZONE``) plus
    ``settings.ORDER_DATE_MAX_FUTURE_DAYS``, which allows for other time zones and clocks."""
    today = clock.business_date(settings.TIME_ZONE)
    return today + dt.timedelta(days=settings.ORDER_DATE_MAX_FUTURE_DAYS)


def _date(value: object, latest: dt.date, errors: dict[str, list[str]]) -> dt.date:
    if isinstance(value, str):
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            pass
        else:
            if day > latest:
                errors.setdefault("order_date", []).append(
                    f"The order date is in the future (the latest accepted is {latest})."
                )
            return day
    errors.setdefault("order_date", []).append("A date in ISO 8601 form (YYYY-MM-DD) is required.")
    return dt.date.min


def _version(value: object, errors: dict[str, list[str]]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**31 - 1:
        errors.setdefault("version", []).append("A positive integer version is required.")
        return 0
    return value


def order_parse(
    data: object, *, force_status: str | None = None, latest_date: dt.date | None = None
) -> OrderInput:
    """Validate one order as sent by a sales system. Raises ``OrderInvalid`` with field errors.

    Checks types and shapes, ISO 4217 currency, known status, amounts as decimal strings with at
    most two places, that the order amount equals the sum of its lines, and that the order is
    not dated after ``latest_date`` (default ``latest_order_date()``; a batch passes it once).
    Whether the agent exists is checked by the ingest service (that needs the database).
    """
    if not isinstance(data, dict):
        raise OrderInvalid({"order": ["An order must be a JSON object."]})
    errors: dict[str, list[str]] = {}
    external_id = _text(data, "external_id", errors)
    agent_code = _text(data, "agent_code", errors)
    amount = _amount(data.get("amount"), "amount", errors, allow_zero=False)
    if amount > MAX_ORDER_AMOUNT:
        errors.setdefault("amount", []).append(f"Amount is too large (at most {MAX_ORDER_AMOUNT}).")
    currency = data.get("currency")
    if not is_iso_currency(currency):
        errors.setdefault("currency", []).append("Not an ISO 4217 currency code.")
    status = force_status or data.get("status")
    if status not in _STATUSES:
        errors.setdefault("status", []).append(f"Must be one of: {', '.join(sorted(_STATUSES))}.")
    latest = latest_order_date() if latest_date is None else latest_date
    order_date = _date(data.get("order_date"), latest, errors)
    version = _version(data.get("version"), errors)
    lines = _lines(data.get("lines"), errors)
    if "amount" not in errors and lines and not any(k.startswith("lines") for k in errors):
        total = sum((line.amount for line in lines), Decimal(0))
        if total != amount:
            errors.setdefault("amount", []).append(
                f"Order amount {amount} does not equal the sum of its lines ({total})."
            )
    enterprise_code = data.get("enterprise_code")
    if enterprise_code is not None and not isinstance(enterprise_code, str):
        errors.setdefault("enterprise_code", []).append("Must be a string.")
    if errors:
        raise OrderInvalid(errors)
    return OrderInput(
        external_id=external_id,
        agent_code=agent_code,
        amount=amount,
        currency=str(currency),
        status=str(status),
        order_date=order_date,
        version=version,
        lines=lines,
        raw=data,
        enterprise_code=enterprise_code,
    )
