"""What a change to a program's terms or a credit line must pass, field by field.

Each field has a checker that normalises its value or raises ``ValueError`` with the words the
form or the API shows; ``changes_clean`` runs them and gives every field's error in one 422. The
admin's forms and the APIs validate with the same tables (``PROGRAM_CHECKS``, ``LINE_CHECKS``),
and the services in ``lending.services.lines`` check again under the row lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from scf.errors import ValidationFailed
from scf.money import is_iso_currency, parse_amount

from ..engine import REFERABLE_RULES
from ..models import CreditLine, DayCount, Grade, Program, ProgramStatus

MAX_RATE = Decimal(1)

Checker = Callable[[Any], Any]


def _money(value: Any) -> Decimal:
    return parse_amount(value, allow_zero=True)


def _decimal(value: Any, places: int) -> Decimal:
    if isinstance(value, bool | float):
        raise ValueError('Send rates as decimal strings, e.g. "0.054", not as numbers.')
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError("Not a valid decimal number.") from None
    if not number.is_finite():
        raise ValueError("Must be a finite number.")
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -places:
        raise ValueError(f"At most {places} decimal places.")
    return number


def _advance_rate(value: Any) -> Decimal:
    rate = _decimal(value, 4)
    if not Decimal(0) < rate <= MAX_RATE:
        raise ValueError("The advance rate must be above 0 and at most 1.")
    return rate


def _annual_rate(value: Any) -> Decimal:
    rate = _decimal(value, 6)
    if not Decimal(0) <= rate <= MAX_RATE:
        raise ValueError("A rate must be between 0 and 1 (0% to 100% a year).")
    return rate


def _whole(minimum: int, maximum: int) -> Checker:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("Must be a whole number.")
        if not minimum <= value <= maximum:
            raise ValueError(f"Must be between {minimum} and {maximum}.")
        return value

    return check


def _choice(choices: Iterable[str]) -> Checker:
    allowed = list(choices)

    def check(value: Any) -> str:
        if value not in allowed:
            raise ValueError(f"Must be one of {', '.join(allowed)}.")
        return str(value)

    return check


def _text(max_length: int) -> Checker:
    def check(value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("This field may not be blank.")
        if len(value.strip()) > max_length:
            raise ValueError(f"At most {max_length} characters.")
        return value.strip()

    return check


def _refer_rules(value: Any) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError("Send a list of rule codes.")
    unknown = sorted(set(value) - set(REFERABLE_RULES))
    if unknown:
        raise ValueError(
            f"Not referable: {', '.join(unknown)}. Allowed: {', '.join(REFERABLE_RULES)}."
        )
    return sorted(set(value))


def _time_zone(value: Any) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("Not a known IANA time zone.") from None
    return str(value)


def _country(value: Any) -> str:
    if value not in holidays.list_supported_countries():
        raise ValueError("No holiday calendar for this country code.")
    return str(value)


def _currency(value: Any) -> str:
    if not is_iso_currency(value):
        raise ValueError("Not an ISO 4217 currency code.")
    return str(value)


PROGRAM_CHECKS: dict[str, Checker] = {
    "name": _text(200),
    "status": _choice(ProgramStatus.values),
    "advance_rate": _advance_rate,
    "limit": _money,
    "min_principal": _money,
    "max_principal": _money,
    "tenor_days": _whole(1, 3650),
    "annual_rate": _annual_rate,
    "day_count": _choice(DayCount.values),
    "grace_days": _whole(0, 365),
    "penalty_rate": _annual_rate,
    "max_order_age_days": _whole(1, 3650),
    "max_dpd_tolerated": _whole(0, 3650),
    "auto_approve_limit": _money,
    "auto_approve_grade": _choice(Grade.values),
    "maker_checker_threshold": _money,
    "review_hold_hours": _whole(1, 24 * 90),
    "refer_rules": _refer_rules,
    "time_zone": _time_zone,
    "holiday_country": _country,
}
# Fixed once a program exists: loans, lines and the ledger are in its currency and parties.
PROGRAM_CREATE_ONLY: dict[str, Checker] = {"code": _text(32), "currency": _currency}
# Program columns without a default.
PROGRAM_REQUIRED = (
    "code",
    "name",
    "advance_rate",
    "limit",
    "max_principal",
    "annual_rate",
    "penalty_rate",
    "auto_approve_limit",
    "maker_checker_threshold",
)
LINE_CHECKS: dict[str, Checker] = {"limit": _money, "risk_grade": _choice(Grade.values)}


def changes_clean(changes: dict[str, Any], checks: dict[str, Checker]) -> dict[str, Any]:
    """Each change checked and normalised; all field errors together in one 422."""
    cleaned: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for field, value in changes.items():
        check = checks.get(field)
        if check is None:
            errors[field] = ["This field cannot be changed here."]
            continue
        try:
            cleaned[field] = check(value)
        except ValueError as exc:
            errors[field] = [str(exc)]
    if errors:
        raise ValidationFailed("Some values are not valid.", fields=errors)
    return cleaned


def principal_range_check(program: Program, cleaned: dict[str, Any]) -> None:
    low = cleaned.get("min_principal", program.min_principal)
    high = cleaned.get("max_principal", program.max_principal)
    if low is not None and high is not None and low > high:
        message = "The minimum principal must not be above the maximum."
        raise ValidationFailed(message, fields={"min_principal": [message]})


def limit_check(row: Program | CreditLine, cleaned: dict[str, Any]) -> None:
    """A limit below what is lent plus reserved would break the headroom CHECK: refuse it."""
    if "limit" not in cleaned:
        return
    utilised = row.outstanding_principal + row.reserved
    if cleaned["limit"] < utilised:
        message = f"The limit may not go below the utilisation ({utilised:.2f})."
        raise ValidationFailed(message, code="limit_below_utilisation", fields={"limit": [message]})


def program_validate(*, program: Program, changes: dict[str, Any]) -> dict[str, Any]:
    """Check ``changes`` against ``program`` as given (no lock); return them normalised.

    Used by forms for early feedback; ``program_update`` repeats it under the row lock.
    """
    cleaned = changes_clean(changes, PROGRAM_CHECKS)
    principal_range_check(program, cleaned)
    limit_check(program, cleaned)
    return cleaned


def credit_line_validate(*, line: CreditLine, changes: dict[str, Any]) -> dict[str, Any]:
    """Check ``changes`` against ``line`` as given (no lock); return them normalised."""
    cleaned = changes_clean(changes, LINE_CHECKS)
    limit_check(line, cleaned)
    return cleaned
