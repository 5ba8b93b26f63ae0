"""Template filters for amounts, roles and order statuses, in the active language.

``{{ amount|money:currency }}`` formats a ``Decimal`` with its currency by the conventions of the
active locale (Babel's CLDR data): ``CN¥1,234.50`` in English, ``¥1,234.50`` in Chinese. The
amount is never turned into a float on the way.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from babel.numbers import format_currency, format_decimal, format_percent
from django import template
from django.utils.translation import get_language, to_locale
from django.utils.translation import gettext_lazy as _

register = template.Library()

ROLE: dict[str, Any] = {
    "agent": _("Agent"),
    "enterprise_admin": _("Enterprise admin"),
    "risk_reviewer": _("Risk reviewer"),
    "risk_approver": _("Risk approver"),
    "ops_admin": _("Operations admin"),
}

ORDER_STATUS: dict[str, Any] = {
    "confirmed": _("Confirmed"),
    "shipped": _("Shipped"),
    "delivered": _("Delivered"),
    "cancelled": _("Cancelled"),
}


def current_locale() -> str:
    return to_locale(get_language() or "en")


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "" or isinstance(value, float | bool):
        return None
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        return None


@register.filter
def money(value: Any, currency: str = "CNY") -> str:
    """A money amount with its currency, per locale; empty for a missing amount."""
    amount = _decimal(value)
    if amount is None:
        return ""
    return str(format_currency(amount, currency or "CNY", locale=current_locale()))


@register.filter
def number(value: Any) -> str:
    """A plain decimal number with the locale's grouping (no currency)."""
    amount = _decimal(value)
    return "" if amount is None else str(format_decimal(amount, locale=current_locale()))


@register.filter
def percent(value: Any, places: int = 2) -> str:
    """A rate stored as a fraction (``0.045``) as a percentage (``4.5%``)."""
    rate = _decimal(value)
    if rate is None:
        return ""
    pattern = "#,##0." + "#" * int(places) + "%"
    return str(format_percent(rate, format=pattern, locale=current_locale()))


@register.filter
def role_label(code: Any) -> str:
    found = ROLE.get(str(code))
    return str(found) if found is not None else str(code)


@register.filter
def order_status(code: Any) -> str:
    found = ORDER_STATUS.get(str(code))
    return str(found) if found is not None else str(code)
