"""Changes to programs and credit lines by bank staff: terms, limits, grades, freezes.

Every function here is one transaction that locks the row it changes (``lending.locks``),
validates the change against the locked figures, saves only the changed columns
(``save(update_fields=...)``) and writes an audit row (who, old values, new values) in the same
transaction. Holding the row lock matters for limits: the finance service reserves credit under
the same lock (the line) or with a conditional UPDATE (the program), so a limit can never be cut
below what is outstanding plus reserved, even while requests are being decided. The CHECK
constraints on both tables stay the last line of defence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from django.db import IntegrityError, transaction

from orders.models import Agent, AgentRelationship, CoreEnterprise, User
from scf.errors import Conflict, ValidationFailed
from scf.money import is_iso_currency, parse_amount

from ..engine import REFERABLE_RULES
from ..locks import line_lock, program_row_lock
from ..models import Bank, CreditLine, DayCount, Grade, Program, ProgramStatus
from .audit import audit_record

MAX_RATE = Decimal(1)
MAX_REASON = 500

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


def _clean(changes: dict[str, Any], checks: dict[str, Checker]) -> dict[str, Any]:
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


def _check_principal_range(program: Program, cleaned: dict[str, Any]) -> None:
    low = cleaned.get("min_principal", program.min_principal)
    high = cleaned.get("max_principal", program.max_principal)
    if low is not None and high is not None and low > high:
        message = "The minimum principal must not be above the maximum."
        raise ValidationFailed(message, fields={"min_principal": [message]})


def _check_limit(row: Program | CreditLine, cleaned: dict[str, Any]) -> None:
    """A limit below what is lent plus reserved would break the headroom CHECK: refuse it."""
    if "limit" not in cleaned:
        return
    utilised = row.outstanding_principal + row.reserved
    if cleaned["limit"] < utilised:
        message = f"The limit may not go below the utilisation ({utilised:.2f})."
        raise ValidationFailed(message, code="limit_below_utilisation", fields={"limit": [message]})


def _jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def _as_json(values: dict[str, Any]) -> dict[str, Any]:
    return {field: _jsonable(value) for field, value in values.items()}


def _apply(
    row: Program | CreditLine, cleaned: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Set the values that differ; return (before, after) of exactly those fields."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for field, value in cleaned.items():
        old = getattr(row, field)
        if old == value:
            continue
        before[field], after[field] = _jsonable(old), _jsonable(value)
        setattr(row, field, value)
    return before, after


def program_validate(*, program: Program, changes: dict[str, Any]) -> dict[str, Any]:
    """Check ``changes`` against ``program`` as given (no lock); return them normalised.

    Used by forms for early feedback; ``program_update`` repeats it under the row lock.
    """
    cleaned = _clean(changes, PROGRAM_CHECKS)
    _check_principal_range(program, cleaned)
    _check_limit(program, cleaned)
    return cleaned


def credit_line_validate(*, line: CreditLine, changes: dict[str, Any]) -> dict[str, Any]:
    """Check ``changes`` against ``line`` as given (no lock); return them normalised."""
    cleaned = _clean(changes, LINE_CHECKS)
    _check_limit(line, cleaned)
    return cleaned


@transaction.atomic
def program_update(*, actor: User | None, program: Program, **changes: Any) -> Program:
    """Change a program's terms or limit and audit it.

    Locks the program row (``lending.locks``): reservations, which take the same row lock
    through their conditional UPDATE, wait, so the limit check sees final figures. Raises
    ``ValidationFailed`` (422; ``limit_below_utilisation`` for a limit under outstanding plus
    reserved). Returns the locked, updated row; unchanged values write nothing.
    """
    locked = program_row_lock(program.pk)
    cleaned = program_validate(program=locked, changes=changes)
    before, after = _apply(locked, cleaned)
    if not after:
        return locked
    locked.save(update_fields=list(after))
    audit_record(actor=actor, action="program.update", obj=locked, before=before, after=after)
    return locked


@transaction.atomic
def program_create(
    *, actor: User | None, bank: Bank, enterprise: CoreEnterprise, **fields: Any
) -> Program:
    """Create a program with validated terms and audit it (after = every value set).

    Nothing to lock: the unique constraint on ``code`` decides between concurrent creations
    (a savepoint turns the loser's violation into a 409 ``program_code_taken``).
    """
    create_only = {k: fields.pop(k) for k in list(fields) if k in PROGRAM_CREATE_ONLY}
    cleaned = {**_clean(create_only, PROGRAM_CREATE_ONLY), **_clean(fields, PROGRAM_CHECKS)}
    missing = [f for f in PROGRAM_REQUIRED if f not in cleaned]
    if missing:
        raise ValidationFailed(
            "Some values are missing.", fields={f: ["This field is required."] for f in missing}
        )
    program = Program(bank=bank, enterprise=enterprise, **cleaned)
    _check_principal_range(program, {})
    try:
        with transaction.atomic():
            program.save()
    except IntegrityError:
        raise Conflict("A program with this code exists.", code="program_code_taken") from None
    after = {"bank": bank.code, "enterprise": enterprise.code, **_as_json(cleaned)}
    audit_record(actor=actor, action="program.create", obj=program, after=after)
    return program


@transaction.atomic
def credit_line_create(
    *, actor: User | None, agent: Agent, program: Program, limit: Any, risk_grade: str
) -> CreditLine:
    """Open an agent's line in a program and audit it.

    Nothing to lock: the unique constraint on (agent, program) decides between concurrent
    creations (a savepoint turns the loser's violation into a 409 ``credit_line_exists``). The
    agent must buy from the program's enterprise.
    """
    cleaned = _clean({"limit": limit, "risk_grade": risk_grade}, LINE_CHECKS)
    if not AgentRelationship.objects.filter(
        agent=agent, enterprise_id=program.enterprise_id
    ).exists():
        message = "The agent does not buy from this program's enterprise."
        raise ValidationFailed(
            message, code="agent_not_with_enterprise", fields={"agent": [message]}
        )
    try:
        with transaction.atomic():
            line = CreditLine.objects.create(agent=agent, program=program, **cleaned)
    except IntegrityError:
        message = "The agent already has a line in this program."
        raise Conflict(message, code="credit_line_exists") from None
    after = {"agent": agent.code, "program": program.code, **_as_json(cleaned)}
    audit_record(actor=actor, action="credit_line.create", obj=line, after=after)
    return line


@transaction.atomic
def credit_line_update(*, actor: User | None, line: CreditLine, **changes: Any) -> CreditLine:
    """Change a line's limit or risk grade and audit it.

    Locks the line row (``lending.locks``), the same lock the finance service holds while
    it decides and reserves, so a cut limit is checked against final figures. Raises
    ``ValidationFailed`` (422; ``limit_below_utilisation``). Freezing has its own functions.
    """
    locked = line_lock(line.pk)
    cleaned = credit_line_validate(line=locked, changes=changes)
    before, after = _apply(locked, cleaned)
    if not after:
        return locked
    locked.save(update_fields=[*after, "updated_at"])
    audit_record(actor=actor, action="credit_line.update", obj=locked, before=before, after=after)
    return locked


def _reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip():
        message = "Give a reason."
        raise ValidationFailed(message, fields={"reason": [message]})
    if len(reason.strip()) > MAX_REASON:
        message = f"At most {MAX_REASON} characters."
        raise ValidationFailed(message, fields={"reason": [message]})
    return reason.strip()


def _set_frozen(actor: User | None, line: CreditLine, frozen: bool, reason: Any) -> CreditLine:
    """Lock the line, check the transition, save and audit (inside the caller's transaction)."""
    text = _reason(reason)
    locked = line_lock(line.pk)
    if locked.frozen == frozen:
        state = "frozen" if frozen else "unfrozen"
        raise Conflict(f"The line is already {state}.", code=f"line_already_{state}")
    before = {"frozen": locked.frozen, "frozen_reason": locked.frozen_reason}
    locked.frozen, locked.frozen_reason = frozen, text if frozen else ""
    locked.save(update_fields=["frozen", "frozen_reason", "updated_at"])
    after = {"frozen": locked.frozen, "frozen_reason": locked.frozen_reason}
    action = "credit_line.freeze" if frozen else "credit_line.unfreeze"
    audit_record(actor=actor, action=action, obj=locked, before=before, after=after, note=text)
    return locked


def credit_line_freeze_validate(*, line: CreditLine, reason: Any) -> str:
    """What ``credit_line_freeze`` would refuse, checked without a lock (to ask for confirmation
    only when the freeze can go ahead). Returns the cleaned reason; the freeze checks again."""
    text = _reason(reason)
    if line.frozen:
        raise Conflict("The line is already frozen.", code="line_already_frozen")
    return text


@transaction.atomic
def credit_line_freeze(*, actor: User | None, line: CreditLine, reason: str) -> CreditLine:
    """Freeze a line: new finance requests on it are declined with ``line_frozen``.

    Locks the line row (``lending.locks``): a request being decided on it finishes first,
    every later one sees the freeze. Raises ``ValidationFailed`` without a reason, ``Conflict``
    ``line_already_frozen``. Loans already approved are not touched.
    """
    return _set_frozen(actor, line, True, reason)


@transaction.atomic
def credit_line_unfreeze(*, actor: User | None, line: CreditLine, reason: str) -> CreditLine:
    """Lift a freeze. Locks the line row; raises ``ValidationFailed`` without a reason,
    ``Conflict`` ``line_already_unfrozen`` when the line is not frozen."""
    return _set_frozen(actor, line, False, reason)
